"""The four RFC 3261 §17 transaction state machines, as tables, for unreliable transport.

Each kind is one table mapping ``(state, input) -> (next state, actions)``; inputs
absent from a table are absorbed (RFC 3261 says to ignore them).  A transaction is
sans-IO (aioquic style): feed it ``receive(msg, now)``, ``handle_timer(now)`` and, on
the server side, ``respond(resp, now)``; read ``messages_to_send()``, ``next_event()``
and ``get_timer()``.  The owner routes messages to transactions by :func:`client_key` /
:func:`server_key` and sends what comes out to the peer address it knows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from carriers.sip.errors import SipParseError
from carriers.sip.headers import Via
from carriers.sip.message import REASONS, Message, Request, Response
from carriers.sip.uri import Uri


@dataclass(frozen=True, slots=True)
class TimerParams:
    """RFC 3261 Table 4 base values (seconds); the named timers derive from them."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # cap on non-INVITE request and INVITE response retransmits
    t4: float = 5.0  # how long a message may live in the network
    timer_d: float = 32.0  # INVITE client: absorb response retransmits (>= 32 s on UDP)

    @property
    def timeout_64t1(self) -> float:
        return 64 * self.t1  # timers B, F, H, J


class Kind(StrEnum):
    INVITE_CLIENT = "invite-client"
    NON_INVITE_CLIENT = "non-invite-client"
    INVITE_SERVER = "invite-server"
    NON_INVITE_SERVER = "non-invite-server"


class State(StrEnum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Input(StrEnum):
    START = "start"
    RESP_1XX = "1xx received"
    RESP_2XX = "2xx received"
    RESP_FINAL = "300-699 received"
    REQUEST = "request retransmission"
    ACK = "ACK received"
    TU_1XX = "TU sends 1xx"
    TU_2XX = "TU sends 2xx"
    TU_FINAL = "TU sends 300-699"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"


class Act(StrEnum):
    SEND_REQUEST = "send request"
    SEND_ACK = "send ACK"
    SEND_100 = "send 100 Trying"
    SEND_RESPONSE = "send the TU's response"
    RESEND_RESPONSE = "resend last response"
    PASS_UP = "pass response to TU"
    TIMEOUT = "report timeout to TU"
    START_A = "start A = T1"
    DOUBLE_A = "restart A doubled"
    START_B = "start B = 64*T1"
    START_D = "start D"
    START_E = "start E = T1"
    DOUBLE_E = "restart E = min(2E, T2)"
    T2_E = "restart E = T2"
    START_F = "start F = 64*T1"
    START_G = "start G = T1"
    DOUBLE_G = "restart G = min(2G, T2)"
    START_H = "start H = 64*T1"
    START_I = "start I = T4"
    START_J = "start J = 64*T1"
    START_K = "start K = T4"
    STOP_TIMERS = "cancel running timers"


S, In, A = State, Input, Act
Row = tuple[State, tuple[Act, ...]]
Table = Mapping[tuple[State | None, Input], Row]

# RFC 3261 Figure 5 (INVITE client transaction).
INVITE_CLIENT: Table = {
    (None, In.START): (S.CALLING, (A.SEND_REQUEST, A.START_A, A.START_B)),
    (S.CALLING, In.TIMER_A): (S.CALLING, (A.SEND_REQUEST, A.DOUBLE_A)),
    (S.CALLING, In.TIMER_B): (S.TERMINATED, (A.TIMEOUT,)),
    (S.CALLING, In.RESP_1XX): (S.PROCEEDING, (A.STOP_TIMERS, A.PASS_UP)),
    (S.CALLING, In.RESP_2XX): (S.TERMINATED, (A.PASS_UP,)),
    (S.CALLING, In.RESP_FINAL): (S.COMPLETED, (A.STOP_TIMERS, A.PASS_UP, A.SEND_ACK, A.START_D)),
    (S.PROCEEDING, In.RESP_1XX): (S.PROCEEDING, (A.PASS_UP,)),
    (S.PROCEEDING, In.RESP_2XX): (S.TERMINATED, (A.PASS_UP,)),
    (S.PROCEEDING, In.RESP_FINAL): (S.COMPLETED, (A.PASS_UP, A.SEND_ACK, A.START_D)),
    (S.COMPLETED, In.RESP_FINAL): (S.COMPLETED, (A.SEND_ACK,)),
    (S.COMPLETED, In.TIMER_D): (S.TERMINATED, ()),
}

# RFC 3261 Figure 6 (non-INVITE client transaction).
NON_INVITE_CLIENT: Table = {
    (None, In.START): (S.TRYING, (A.SEND_REQUEST, A.START_E, A.START_F)),
    (S.TRYING, In.TIMER_E): (S.TRYING, (A.SEND_REQUEST, A.DOUBLE_E)),
    (S.TRYING, In.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
    (S.TRYING, In.RESP_1XX): (S.PROCEEDING, (A.PASS_UP,)),
    (S.TRYING, In.RESP_2XX): (S.COMPLETED, (A.STOP_TIMERS, A.PASS_UP, A.START_K)),
    (S.TRYING, In.RESP_FINAL): (S.COMPLETED, (A.STOP_TIMERS, A.PASS_UP, A.START_K)),
    (S.PROCEEDING, In.TIMER_E): (S.PROCEEDING, (A.SEND_REQUEST, A.T2_E)),
    (S.PROCEEDING, In.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
    (S.PROCEEDING, In.RESP_1XX): (S.PROCEEDING, (A.PASS_UP,)),
    (S.PROCEEDING, In.RESP_2XX): (S.COMPLETED, (A.STOP_TIMERS, A.PASS_UP, A.START_K)),
    (S.PROCEEDING, In.RESP_FINAL): (S.COMPLETED, (A.STOP_TIMERS, A.PASS_UP, A.START_K)),
    (S.COMPLETED, In.TIMER_K): (S.TERMINATED, ()),
}

# RFC 3261 Figure 7 (INVITE server transaction).
INVITE_SERVER: Table = {
    (None, In.START): (S.PROCEEDING, (A.SEND_100,)),
    (S.PROCEEDING, In.REQUEST): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_2XX): (S.TERMINATED, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_G, A.START_H)),
    (S.COMPLETED, In.REQUEST): (S.COMPLETED, (A.RESEND_RESPONSE,)),
    (S.COMPLETED, In.TIMER_G): (S.COMPLETED, (A.RESEND_RESPONSE, A.DOUBLE_G)),
    (S.COMPLETED, In.TIMER_H): (S.TERMINATED, (A.TIMEOUT,)),
    (S.COMPLETED, In.ACK): (S.CONFIRMED, (A.STOP_TIMERS, A.START_I)),
    (S.CONFIRMED, In.TIMER_I): (S.TERMINATED, ()),
}

# RFC 3261 Figure 8 (non-INVITE server transaction).
NON_INVITE_SERVER: Table = {
    (None, In.START): (S.TRYING, ()),
    (S.TRYING, In.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.TRYING, In.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.TRYING, In.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, In.REQUEST): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, In.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.COMPLETED, In.REQUEST): (S.COMPLETED, (A.RESEND_RESPONSE,)),
    (S.COMPLETED, In.TIMER_J): (S.TERMINATED, ()),
}

TABLES: dict[Kind, Table] = {
    Kind.INVITE_CLIENT: INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    Kind.INVITE_SERVER: INVITE_SERVER,
    Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
}


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    response: Response


@dataclass(frozen=True, slots=True)
class TimedOut:
    timer: str  # "B", "F" or "H"


TransactionEvent = ResponseReceived | TimedOut

MAGIC_COOKIE = "z9hG4bK"


def client_key(msg: Message) -> tuple[str, str]:
    """(branch, method) matching a response to its client transaction (§17.1.3)."""
    branch = _top_via(msg).branch or ""
    return branch, msg.cseq.method


def server_key(request: Request) -> tuple[str, str, str]:
    """(branch, sent-by, method) matching a request to a server transaction (§17.2.3);
    an ACK matches the INVITE transaction it acknowledges."""
    via = _top_via(request)
    method = "INVITE" if request.method == "ACK" else request.method
    return via.branch or "", via.host + ("" if via.port is None else f":{via.port}"), method


def _top_via(msg: Message) -> Via:
    vias = msg.via
    if not vias:
        raise SipParseError("message without Via", header="Via")
    return vias[0]


def _kind_for(request: Request, client: bool) -> Kind:
    invite = request.method == "INVITE"
    if client:
        return Kind.INVITE_CLIENT if invite else Kind.NON_INVITE_CLIENT
    return Kind.INVITE_SERVER if invite else Kind.NON_INVITE_SERVER


class Transaction:
    """One transaction; create with :meth:`client` or :meth:`server`."""

    def __init__(self, kind: Kind, request: Request, params: TimerParams) -> None:
        self.kind = kind
        self.request = request
        self.params = params
        self.state: State | None = None
        self.last_response: Response | None = None
        self._table = TABLES[kind]
        self._timers: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._out: list[Message] = []
        self._events: deque[TransactionEvent] = deque()
        self._pending: Response | None = None
        # Called after every state-machine step, so an owner of thousands of
        # transactions can find the ones with output, events or new deadlines
        # without scanning them all.
        self.on_change: Callable[[Transaction], None] | None = None

    @classmethod
    def client(cls, request: Request, now: float, params: TimerParams) -> Transaction:
        """Start sending ``request`` (INVITE or not)."""
        tx = cls(_kind_for(request, client=True), request, params)
        tx._fire(Input.START, now)
        return tx

    @classmethod
    def server(cls, request: Request, now: float, params: TimerParams) -> Transaction:
        """A new request arrived; INVITE servers answer 100 Trying at once."""
        tx = cls(_kind_for(request, client=False), request, params)
        tx._fire(Input.START, now)
        return tx

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    # --- inputs --------------------------------------------------------------------
    def receive(self, msg: Message, now: float) -> None:
        """A response (client side) or a retransmitted request / ACK (server side)."""
        if isinstance(msg, Response):
            if self.kind not in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT):
                return
            self._pending = msg
            status = msg.status
            inp = In.RESP_1XX if status < 200 else In.RESP_2XX if status < 300 else In.RESP_FINAL
            self._fire(inp, now)
        elif self.kind in (Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER):
            self._fire(In.ACK if msg.method == "ACK" else In.REQUEST, now)

    def respond(self, response: Response, now: float) -> None:
        """The TU's response (server side)."""
        self._pending = response
        status = response.status
        inp = In.TU_1XX if status < 200 else In.TU_2XX if status < 300 else In.TU_FINAL
        self._fire(inp, now)

    def handle_timer(self, now: float) -> None:
        for name, when in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if when <= now and self._timers.get(name) == when:
                del self._timers[name]
                self._fire(Input(f"Timer {name}"), now)

    # --- outputs -------------------------------------------------------------------
    def get_timer(self) -> float | None:
        return min(self._timers.values(), default=None)

    def messages_to_send(self) -> list[Message]:
        out, self._out = self._out, []
        return out

    def datagrams_to_send(self) -> list[bytes]:
        return [m.serialise() for m in self.messages_to_send()]

    def next_event(self) -> TransactionEvent | None:
        return self._events.popleft() if self._events else None

    # --- the machine ---------------------------------------------------------------
    def _fire(self, inp: Input, now: float) -> None:
        row = self._table.get((self.state, inp))
        if row is None:
            return  # absorbed, as the RFC's figures imply for unlisted events
        next_state, actions = row
        for act in actions:
            self._do(act, inp, now)
        self.state = next_state
        if next_state is State.TERMINATED:
            self._timers.clear()
        if self.on_change is not None:
            self.on_change(self)

    def _start(self, name: str, interval: float, now: float) -> None:
        self._intervals[name] = interval
        self._timers[name] = now + interval

    def _do(self, act: Act, inp: Input, now: float) -> None:
        p = self.params
        if act is A.SEND_REQUEST:
            self._out.append(self.request)
        elif act is A.SEND_ACK:
            assert self._pending is not None
            self._out.append(ack_for_non_2xx(self.request, self._pending))
        elif act is A.SEND_100:
            self.last_response = response_to(self.request, 100)
            self._out.append(self.last_response)
        elif act is A.SEND_RESPONSE:
            assert self._pending is not None
            self.last_response = self._pending
            self._out.append(self._pending)
        elif act is A.RESEND_RESPONSE:
            if self.last_response is not None:
                self._out.append(self.last_response)
        elif act is A.PASS_UP:
            assert self._pending is not None
            self._events.append(ResponseReceived(self._pending))
        elif act is A.TIMEOUT:
            self._events.append(TimedOut(inp.value.removeprefix("Timer ")))
        elif act is A.STOP_TIMERS:
            self._timers.clear()
        else:
            name, interval = self._timer_for(act, p)
            self._start(name, interval, now)

    def _timer_for(self, act: Act, p: TimerParams) -> tuple[str, float]:
        if act is A.START_A:
            return "A", p.t1
        if act is A.DOUBLE_A:
            return "A", 2 * self._intervals["A"]
        if act is A.START_B:
            return "B", p.timeout_64t1
        if act is A.START_D:
            return "D", p.timer_d
        if act is A.START_E:
            return "E", p.t1
        if act is A.DOUBLE_E:
            return "E", min(2 * self._intervals["E"], p.t2)
        if act is A.T2_E:
            return "E", p.t2
        if act is A.START_F:
            return "F", p.timeout_64t1
        if act is A.START_G:
            return "G", p.t1
        if act is A.DOUBLE_G:
            return "G", min(2 * self._intervals["G"], p.t2)
        if act is A.START_H:
            return "H", p.timeout_64t1
        if act is A.START_I:
            return "I", p.t4
        if act is A.START_J:
            return "J", p.timeout_64t1
        return "K", p.t4  # A.START_K


def response_to(request: Request, status: int, reason: str | None = None) -> Response:
    """A response copying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2)."""
    resp = Response(status=status, reason=reason or REASONS.get(status, "Unknown"))
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for key, value in request.headers:
            if key == name:
                resp.headers.append((key, value))
    if status == 100:
        for key, value in request.headers:
            if key == "Timestamp":
                resp.headers.append((key, value))
    return resp


def ack_for_non_2xx(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 (RFC 3261 §17.1.1.3)."""
    uri: Uri | None = invite.uri
    ack = Request(method="ACK", uri=uri)
    ack.headers.append(("Via", invite.get_all("Via")[0]))
    for name in ("Max-Forwards", "From"):
        value = invite.get(name)
        if value is not None:
            ack.headers.append((name, value))
    to = response.get("To")
    ack.headers.append(("To", to if to is not None else invite.get("To") or ""))
    ack.headers.append(("Call-ID", invite.call_id))
    ack.headers.append(("CSeq", f"{invite.cseq.seq} ACK"))
    ack.headers += [(k, v) for k, v in invite.headers if k == "Route"]
    return ack
