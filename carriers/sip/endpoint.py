"""A sans-IO SIP user agent (UAC and UAS) that owns transactions and dialogs.

Feed it ``receive_datagram(data, addr, now)`` and ``handle_timer(now)``; drive it
with ``invite``/``cancel``/``bye``/``answer``/``reject``; send what
``datagrams_to_send()`` returns and call ``handle_timer`` at ``get_timer()``; read
``next_event()`` until None.  One peer address per call (the trunk or the agent).
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from carriers.base import CallOutcome
from carriers.sip.auth import AuthError, authorization, parse_challenge
from carriers.sip.dialog import Dialog
from carriers.sip.errors import SipParseError
from carriers.sip.headers import get_param
from carriers.sip.message import Request, Response
from carriers.sip.outcome import outcome_for_status
from carriers.sip.parser import parse_message
from carriers.sip.security import bad_request_response
from carriers.sip.transaction import (
    Kind,
    ResponseReceived,
    TimedOut,
    TimerParams,
    Transaction,
    client_key,
    response_to,
    server_key,
)
from carriers.sip.uri import SipUri, Uri, parse_uri
from carriers.sip.validate import application_check

Addr = tuple[str, int]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


class _AnyMethod(frozenset[str]):
    """Method check left to the endpoint (unknown methods become IncomingRequest)."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY_METHOD = _AnyMethod()


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    host: str  # our address as the peer sees it (Via, Contact, From)
    port: int = 5060
    user: str = "dialer"
    username: str | None = None  # digest credentials for 401/407 retries
    password: str | None = None
    user_agent: str = "dialer"
    timers: TimerParams = field(default_factory=TimerParams)


class CallState(StrEnum):
    CALLING = "calling"
    EARLY = "early"  # provisional received (CANCEL allowed)
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(eq=False, slots=True)
class Call:
    """A call leg handle; compare by identity."""

    call_id: str
    peer: Addr
    outgoing: bool
    invite: Request
    state: CallState = CallState.CALLING
    dialog: Dialog | None = None
    cancel_requested: bool = False
    auth_tried: bool = False
    local_sdp: bytes = b""
    remote_sdp: bytes | None = None
    invite_tx: Transaction | None = None
    # UAS 2xx retransmission until ACK (RFC 3261 §13.3.1.4)
    ok_response: Response | None = None
    ok_interval: float = 0.0
    ok_next: float | None = None
    ok_deadline: float = 0.0


@dataclass(frozen=True, slots=True)
class CallProgress:
    call: Call
    status: int
    reason: str
    sdp: bytes | None  # early media when set


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call: Call
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class CallFailed:
    call: Call
    status: int
    reason: str
    outcome: CallOutcome


@dataclass(frozen=True, slots=True)
class CallEnded:
    call: Call
    by_remote: bool


@dataclass(frozen=True, slots=True)
class IncomingCall:
    call: Call
    request: Request
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class AuthRequired:
    call: Call
    status: int


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A request outside any call (REGISTER, MESSAGE...); answer with ``respond``."""

    request: Request
    addr: Addr


@dataclass(eq=False, slots=True)
class Registration:
    """A REGISTER binding we keep with a registrar (handle; compare by identity)."""

    registrar: Uri
    peer: Addr
    expires: int
    call_id: str
    from_tag: str
    seq: int = 1
    auth_tried: bool = False


@dataclass(frozen=True, slots=True)
class Registered:
    registration: Registration
    expires: int  # what the registrar granted; refresh before it runs out


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    registration: Registration
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class OptionsAnswered:
    """The final answer to an OPTIONS we sent (408: none came before Timer F)."""

    request: Request
    status: int
    reason: str


EndpointEvent = (
    CallProgress | CallAnswered | CallFailed | CallEnded | IncomingCall | AuthRequired
    | IncomingRequest | Registered | RegistrationFailed | OptionsAnswered
)  # fmt: skip


def _token() -> str:
    return secrets.token_hex(8)


class Endpoint:
    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self._calls: dict[str, Call] = {}
        self._client: dict[tuple[str, str], tuple[Transaction, Call | None, Addr]] = {}
        self._registrations: dict[tuple[str, str], Registration] = {}  # by client key
        self._server: dict[tuple[str, str, str], tuple[Transaction, Addr]] = {}
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[EndpointEvent] = deque()
        self._now = 0.0  # the latest time any input carried
        # Work is proportional to what changed, not to how many transactions live
        # (a busy trunk holds hundreds in Timer K / M / D): transactions report
        # each step to ``_changed``, and their deadlines go on a heap (stale
        # entries are skipped when they reach the top).
        self._keys: dict[int, tuple[str, ...]] = {}  # id(tx) -> its client/server key
        self._born: dict[int, int] = {}  # id(tx) -> creation order
        self._changed: dict[int, Transaction] = {}
        self._deadlines: list[tuple[float, int, Transaction]] = []
        self._seq = itertools.count()
        self._awaiting_ack: dict[int, Call] = {}  # UAS calls resending 2xx (ok_next)

    # --- outputs -------------------------------------------------------------------
    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        self._flush(self._now)
        out, self._out = self._out, []
        return out

    def next_event(self) -> EndpointEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        heap = self._deadlines
        while heap:
            when, _, tx = heap[0]
            current = tx.get_timer()
            if id(tx) in self._keys and current is not None and current <= when:
                break
            heapq.heappop(heap)  # finished, or its deadline moved (a newer entry exists)
        times = [heap[0][0]] if heap else []
        for cid, call in list(self._awaiting_ack.items()):
            if call.ok_next is None:
                del self._awaiting_ack[cid]
            else:
                times.append(call.ok_next)
        return min(times, default=None)

    def _track(self, tx: Transaction, key: tuple[str, ...]) -> None:
        self._keys[id(tx)] = key
        self._born[id(tx)] = next(self._seq)
        tx.on_change = self._tx_changed
        self._tx_changed(tx)

    def _tx_changed(self, tx: Transaction) -> None:
        self._changed[id(tx)] = tx
        when = tx.get_timer()
        if when is not None:
            heapq.heappush(self._deadlines, (when, next(self._seq), tx))

    @property
    def calls(self) -> list[Call]:
        return list(self._calls.values())

    # --- building ------------------------------------------------------------------
    @property
    def _contact(self) -> str:
        return f"<sip:{self.config.user}@{self.config.host}:{self.config.port}>"

    def _via(self) -> str:
        return f"SIP/2.0/UDP {self.config.host}:{self.config.port};branch=z9hG4bK{_token()};rport"

    def _new_request(self, method: str, uri: Uri, call_id: str, seq: int) -> Request:
        req = Request(method=method, uri=uri)
        req.add("Via", self._via())
        req.add("Max-Forwards", "70")
        req.add("Call-ID", call_id)
        req.add("CSeq", f"{seq} {method}")
        req.add("User-Agent", self.config.user_agent)
        return req

    def _in_dialog(self, call: Call, method: str) -> Request:
        dialog = call.dialog
        assert dialog is not None
        dialog.local_seq += 1
        req = self._new_request(method, dialog.remote_target, dialog.call_id, dialog.local_seq)
        req.add("From", f"{dialog.local_uri};tag={dialog.local_tag}")
        req.add(
            "To", dialog.remote_uri + (f";tag={dialog.remote_tag}" if dialog.remote_tag else "")
        )
        for route in dialog.route_set:
            req.add("Route", route)
        return req

    def _start_client(self, req: Request, call: Call | None, peer: Addr, now: float) -> Transaction:
        self._now = max(self._now, now)
        tx = Transaction.client(req, now, self.config.timers)
        key = client_key(req)
        self._client[key] = (tx, call, peer)
        self._track(tx, key)
        return tx

    # --- UAC -----------------------------------------------------------------------
    def invite(
        self,
        target_uri: str,
        sdp_offer: bytes,
        peer: Addr,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        from_user: str | None = None,
    ) -> Call:
        """Start an outgoing call to ``target_uri`` via ``peer`` (the trunk)."""
        uri = parse_uri(target_uri)
        call_id = f"{_token()}@{self.config.host}"
        req = self._new_request("INVITE", uri, call_id, 1)
        user = from_user or self.config.user
        req.add("From", f"<sip:{user}@{self.config.host}>;tag={_token()}")
        req.add("To", f"<{uri}>")
        req.add("Contact", self._contact)
        req.add("Allow", ALLOW)
        for name, value in headers:
            req.add(name, value)
        if sdp_offer:
            req.add("Content-Type", "application/sdp")
        req.body = sdp_offer
        call = Call(call_id, peer, True, req, local_sdp=sdp_offer)
        self._calls[call_id] = call
        call.invite_tx = self._start_client(req, call, peer, now)
        return call

    def cancel(self, call: Call, now: float) -> None:
        """Abandon an unanswered outgoing call.  CANCEL goes out once a provisional
        response has arrived (RFC 3261 §9.1); until then it is held."""
        if not call.outgoing or call.state in (CallState.CONFIRMED, CallState.TERMINATED):
            return
        call.cancel_requested = True
        if call.state is CallState.EARLY:
            self._send_cancel(call, now)

    def _send_cancel(self, call: Call, now: float) -> None:
        inv = call.invite
        assert inv.uri is not None
        req = Request(method="CANCEL", uri=inv.uri)
        req.add("Via", inv.get_all("Via")[0])  # same branch as the INVITE (§9.1)
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            req.add(name, inv.get(name) or "")
        req.add("CSeq", f"{inv.cseq.seq} CANCEL")
        for route in inv.get_all("Route"):
            req.add("Route", route)
        self._start_client(req, None, call.peer, now)

    def bye(self, call: Call, now: float) -> None:
        """Hang up an answered call (either direction)."""
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            return
        self._start_client(self._in_dialog(call, "BYE"), call, call.peer, now)
        self._end(call, by_remote=False)

    def options(self, target_uri: str, peer: Addr, now: float) -> Request:
        """Send an OPTIONS keep-alive / trunk probe; its final answer comes back as
        :class:`OptionsAnswered`."""
        uri = parse_uri(target_uri)
        req = self._new_request("OPTIONS", uri, f"{_token()}@{self.config.host}", 1)
        req.add("From", f"<sip:{self.config.user}@{self.config.host}>;tag={_token()}")
        req.add("To", f"<{uri}>")
        req.add("Accept", "application/sdp")
        self._start_client(req, None, peer, now)
        return req

    def register(
        self, registrar_uri: str, peer: Addr, now: float, expires: int = 3600
    ) -> Registration:
        """Bind our Contact at a registrar; retried once with credentials on 401/407.
        Call again with the same handle (``refresh``) before ``expires`` runs out."""
        uri = parse_uri(registrar_uri)
        reg = Registration(uri, peer, expires, f"{_token()}@{self.config.host}", _token())
        self._send_register(reg, None, now)
        return reg

    def refresh(self, reg: Registration, now: float, expires: int | None = None) -> None:
        """Re-register (``expires=0`` removes the binding)."""
        if expires is not None:
            reg.expires = expires
        reg.auth_tried = False
        self._send_register(reg, None, now)

    def _send_register(self, reg: Registration, auth: tuple[str, str] | None, now: float) -> None:
        aor = f"<sip:{self.config.username or self.config.user}@{_host_of(reg.registrar)}>"
        req = self._new_request("REGISTER", reg.registrar, reg.call_id, reg.seq)
        reg.seq += 1
        req.add("From", f"{aor};tag={reg.from_tag}")
        req.add("To", aor)
        req.add("Contact", self._contact)
        req.add("Expires", str(reg.expires))
        if auth is not None:
            req.add(*auth)
        self._start_client(req, None, reg.peer, now)
        self._registrations[client_key(req)] = reg

    def _on_register_response(self, reg: Registration, resp: Response, now: float) -> None:
        cfg = self.config
        if 200 <= resp.status < 300:
            granted = reg.expires
            contacts = resp.contact
            granted_values = [get_param(c.params, "expires") or "" for c in contacts]
            numbers = [int(v) for v in granted_values if v.isdigit()]
            if numbers:
                granted = min(numbers)
            header = resp.get("Expires")
            if not contacts and header is not None and header.isdigit():
                granted = int(header)
            self._events.append(Registered(reg, granted))
            return
        if resp.status in (401, 407) and not reg.auth_tried and cfg.username and cfg.password:
            header = "Proxy-Authenticate" if resp.status == 407 else "WWW-Authenticate"
            value = resp.get(header)
            try:
                challenge = parse_challenge(value or "", proxy=resp.status == 407)
            except AuthError as exc:
                self._events.append(RegistrationFailed(reg, resp.status, str(exc)))
                return
            reg.auth_tried = True
            answer = authorization(
                challenge,
                username=cfg.username,
                password=cfg.password,
                method="REGISTER",
                uri=str(reg.registrar),
            )
            self._send_register(reg, (challenge.answer_header, answer), now)
            return
        self._events.append(RegistrationFailed(reg, resp.status, resp.reason))

    # --- UAS -----------------------------------------------------------------------
    def answer(self, call: Call, sdp: bytes, now: float) -> None:
        """Answer an incoming call with 200 and our SDP; 2xx is resent until ACK."""
        if call.outgoing or call.state is not CallState.CALLING:
            return
        resp = self._uas_response(call, 200)
        resp.add("Content-Type", "application/sdp")
        resp.body = sdp
        call.local_sdp = sdp
        call.state = CallState.CONFIRMED
        self._respond_invite(call, resp, now)
        t1 = self.config.timers.t1
        call.ok_response, call.ok_interval = resp, t1
        call.ok_next, call.ok_deadline = now + t1, now + 64 * t1
        self._awaiting_ack[id(call)] = call

    def ring(self, call: Call, now: float, status: int = 180, sdp: bytes = b"") -> None:
        if call.outgoing or call.state is not CallState.CALLING:
            return
        resp = self._uas_response(call, status)
        if sdp:
            resp.add("Content-Type", "application/sdp")
            resp.body = sdp
        self._respond_invite(call, resp, now)

    def reject(self, call: Call, status: int, now: float) -> None:
        if call.outgoing or call.state is not CallState.CALLING:
            return
        self._respond_invite(call, self._uas_response(call, status), now)
        call.state = CallState.TERMINATED
        del self._calls[call.call_id]

    def respond(self, request: Request, status: int | Response, now: float) -> Response:
        """Answer an :class:`IncomingRequest` with a status, or with a response built
        elsewhere (a :class:`carriers.sip.registrar.Registrar`'s answer to REGISTER)."""
        if isinstance(status, Response):
            resp = status
        else:
            resp = response_to(request, status)
            if status > 100 and resp.to.tag is None:
                resp.set("To", f"{request.get('To')};tag={_token()}")
        entry = self._server.get(server_key(request))
        if entry is not None:
            entry[0].respond(resp, now)
        return resp

    def _uas_response(self, call: Call, status: int) -> Response:
        assert call.dialog is not None
        resp = response_to(call.invite, status)
        resp.set("To", f"{call.invite.get('To')};tag={call.dialog.local_tag}")
        if status < 300:
            resp.add("Contact", self._contact)
        return resp

    def _respond_invite(self, call: Call, resp: Response, now: float) -> None:
        self._now = max(self._now, now)
        if call.invite_tx is not None:
            call.invite_tx.respond(resp, now)

    # --- input ---------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        self._now = max(self._now, now)
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            reply = bad_request_response(data, exc.what)
            if reply is not None:
                self._out.append((reply.serialise(), addr))
            return
        refusal = application_check(msg, methods=_ANY_METHOD)
        if refusal is not None and (isinstance(msg, Response) or refusal.status == 400):
            if isinstance(msg, Request) and msg.method != "ACK":
                reply = bad_request_response(data, refusal.reason)
                if reply is not None:
                    self._out.append((reply.serialise(), addr))
            return
        refuse_new = isinstance(msg, Request) and msg.method != "ACK" and msg.to.tag is None
        if refuse_new and refusal is not None and refusal.status is not None:
            assert isinstance(msg, Request)
            self._refuse(msg, refusal.status, refusal.reason, addr, now)
            return
        try:
            if isinstance(msg, Response):
                self._on_response(msg, now)
            else:
                self._on_request(msg, addr, now)
        except SipParseError:
            return  # a header we needed was malformed on access: drop
        self._flush(now)

    def _refuse(self, req: Request, status: int, reason: str, addr: Addr, now: float) -> None:
        """Answer a request we will not process (415/416/420/401...) through a server
        transaction, so retransmissions get the same answer."""
        key = server_key(req)
        if key in self._server:
            self._server[key][0].receive(req, now)
            self._flush(now)
            return
        tx = Transaction.server(req, now, self.config.timers)
        self._server[key] = (tx, addr)
        self._track(tx, key)
        resp = response_to(req, status)
        resp.set("To", f"{req.get('To')};tag={_token()}")
        if status == 420:
            resp.add("Unsupported", ", ".join(req.get_all("Require")))
        elif status == 415:
            resp.add("Accept", "application/sdp")
        elif status == 405:
            resp.add("Allow", ALLOW)
        tx.respond(resp, now)
        self._flush(now)

    def handle_timer(self, now: float) -> None:
        self._now = max(self._now, now)
        due: dict[int, Transaction] = {}
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, tx = heapq.heappop(heap)
            if id(tx) in self._keys:
                due[id(tx)] = tx
        for tx in due.values():
            tx.handle_timer(now)
            self._tx_changed(tx)  # its next deadline (even if the timer was absorbed)
        for call in list(self._awaiting_ack.values()):
            if call.ok_next is not None and call.ok_next <= now:
                self._resend_ok(call, now)
        self._flush(now)

    def _resend_ok(self, call: Call, now: float) -> None:
        if now >= call.ok_deadline:
            call.ok_next = None  # no ACK: give up on the call (§13.3.1.4)
            self._start_client(self._in_dialog(call, "BYE"), call, call.peer, now)
            self._end(call, by_remote=True)
            return
        assert call.ok_response is not None
        self._out.append((call.ok_response.serialise(), call.peer))
        call.ok_interval = min(2 * call.ok_interval, self.config.timers.t2)
        call.ok_next = now + call.ok_interval

    def _on_response(self, resp: Response, now: float) -> None:
        if len(resp.via) != 1:
            return  # §8.1.3.3: not for us
        entry = self._client.get(client_key(resp))
        if entry is not None:
            entry[0].receive(resp, now)
            return
        # A retransmitted 2xx to INVITE: its transaction is gone; ACK again (§13.2.2.4).
        call = self._calls.get(resp.call_id)
        if call is not None and resp.cseq.method == "INVITE" and 200 <= resp.status < 300:
            self._send_ack(call, resp)

    def _on_request(self, req: Request, addr: Addr, now: float) -> None:
        key = server_key(req)
        entry = self._server.get(key)
        if entry is not None:
            entry[0].receive(req, now)
            return
        if req.method == "ACK":
            call = self._calls.get(req.call_id)
            if call is not None and not call.outgoing:
                call.ok_next = None  # ACK for our 2xx
                if call.dialog is not None:
                    call.dialog.confirmed = True
            return
        if req.method == "CANCEL":
            self._on_cancel(req, addr, now)
            return
        tx = Transaction.server(req, now, self.config.timers)
        self._server[key] = (tx, addr)
        self._track(tx, key)
        call = self._calls.get(req.call_id)
        if call is not None and call.dialog is not None and req.to.tag is not None:
            if call.dialog.matches(req, incoming=True):
                self._in_dialog_request(call, req, tx, now)
            else:
                tx.respond(response_to(req, 481), now)
        elif req.to.tag is not None:
            tx.respond(response_to(req, 481), now)
        elif req.method == "INVITE":
            call = Call(req.call_id, addr, False, req, invite_tx=tx, remote_sdp=req.body or None)
            call.dialog = Dialog.as_uas(req, _token())
            self._calls[req.call_id] = call
            self._events.append(IncomingCall(call, req, req.body or None))
        elif req.method == "OPTIONS":
            ok = response_to(req, 200)
            ok.set("To", f"{req.get('To')};tag={_token()}")
            ok.add("Allow", ALLOW)
            ok.add("Accept", "application/sdp")
            tx.respond(ok, now)
        else:
            self._events.append(IncomingRequest(req, addr))

    def _in_dialog_request(self, call: Call, req: Request, tx: Transaction, now: float) -> None:
        dialog = call.dialog
        assert dialog is not None
        if dialog.remote_seq is not None and req.cseq.seq <= dialog.remote_seq:
            tx.respond(response_to(req, 500), now)  # out of order (§12.2.2)
            return
        dialog.remote_seq = req.cseq.seq
        ok = response_to(req, 200)
        ok.set("To", f"{req.get('To')}")
        if req.method == "BYE":
            tx.respond(ok, now)
            call.ok_next = None
            self._end(call, by_remote=True)
        elif req.method == "INVITE":
            pending = any(
                c is call and t.request.method == "INVITE" and not t.terminated
                for t, c, _ in self._client.values()
            )
            if pending:
                tx.respond(response_to(req, 491), now)  # glare (§14.1)
                return
            # A session refresh or hold from the peer: keep our session as it is.
            ok.add("Contact", self._contact)
            if call.local_sdp:
                ok.add("Content-Type", "application/sdp")
                ok.body = call.local_sdp
            call.remote_sdp = req.body or call.remote_sdp
            tx.respond(ok, now)
        elif req.method == "OPTIONS":
            ok.add("Allow", ALLOW)
            tx.respond(ok, now)
        else:
            self._events.append(IncomingRequest(req, call.peer))

    def _on_cancel(self, req: Request, addr: Addr, now: float) -> None:
        tx = Transaction.server(req, now, self.config.timers)
        key = server_key(req)
        self._server[key] = (tx, addr)
        self._track(tx, key)
        invite_key = (*server_key(req)[:2], "INVITE")
        entry = self._server.get(invite_key)
        if entry is None:
            tx.respond(response_to(req, 481), now)
            return
        tx.respond(response_to(req, 200), now)
        call = self._calls.get(req.call_id)
        if call is not None and call.state is CallState.CALLING:
            self._respond_invite(call, self._uas_response(call, 487), now)
            call.state = CallState.TERMINATED
            del self._calls[call.call_id]
            self._events.append(CallEnded(call, by_remote=True))

    # --- transaction events ----------------------------------------------------------
    def _flush(self, now: float) -> None:
        """Collect the output and events of the transactions that changed; forget
        terminated ones.  Handling an event may start transactions (CANCEL, BYE,
        auth retry): they are flushed in the same pass."""
        changed = self._changed
        while changed:
            # Client transactions first, then server ones, each oldest first: the
            # order a full scan gives (an INVITE's 487 leaves before the 200 to
            # the CANCEL that caused it, as peers' scenarios expect).
            batch = sorted(changed.values(), key=self._flush_order)
            changed.clear()
            for tx in batch:
                key = self._keys.get(id(tx))
                if key is None:
                    continue
                if tx.kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT):
                    self._flush_client(tx, key, now)  # type: ignore[arg-type]
                else:
                    self._flush_server(tx, key)  # type: ignore[arg-type]

    def _forget(self, tx: Transaction) -> None:
        self._keys.pop(id(tx), None)
        self._born.pop(id(tx), None)

    def _flush_order(self, tx: Transaction) -> tuple[bool, int]:
        server = tx.kind in (Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER)
        return server, self._born.get(id(tx), 0)

    def _flush_client(self, tx: Transaction, key: tuple[str, str], now: float) -> None:
        entry = self._client.get(key)
        if entry is None or entry[0] is not tx:
            self._forget(tx)
            return
        _, call, peer = entry
        self._out += [(m.serialise(), peer) for m in tx.messages_to_send()]
        while (event := tx.next_event()) is not None:
            reg = self._registrations.get(key)
            if reg is not None:
                self._on_register_event(reg, event, now)
            else:
                self._on_client_event(tx, call, event, now)
        if tx.terminated:
            self._client.pop(key, None)
            self._registrations.pop(key, None)
            self._forget(tx)

    def _flush_server(self, tx: Transaction, key: tuple[str, str, str]) -> None:
        entry = self._server.get(key)
        if entry is None or entry[0] is not tx:
            self._forget(tx)
            return
        self._out += [(m.serialise(), entry[1]) for m in tx.messages_to_send()]
        if tx.terminated:
            del self._server[key]
            self._forget(tx)

    def _on_register_event(self, reg: Registration, event: object, now: float) -> None:
        if isinstance(event, TimedOut):
            self._events.append(RegistrationFailed(reg, 408, "No response (Timer F)"))
        elif isinstance(event, ResponseReceived) and event.response.status >= 200:
            self._on_register_response(reg, event.response, now)

    def _on_client_event(
        self, tx: Transaction, call: Call | None, event: object, now: float
    ) -> None:
        method = tx.request.method
        if call is None:
            if method == "OPTIONS":
                if isinstance(event, TimedOut):
                    self._events.append(OptionsAnswered(tx.request, 408, "No response (Timer F)"))
                elif isinstance(event, ResponseReceived) and event.response.status >= 200:
                    r = event.response
                    self._events.append(OptionsAnswered(tx.request, r.status, r.reason))
            return
        if isinstance(event, TimedOut):
            if method == "INVITE" and call.state in (CallState.CALLING, CallState.EARLY):
                self._fail(call, 408, "No response (Timer B)", CallOutcome.TRUNK_FAILURE)
            return
        if not isinstance(event, ResponseReceived) or method != "INVITE":
            return
        if tx is not call.invite_tx:
            return
        resp = event.response
        if resp.status < 200:
            if call.state is CallState.CALLING:
                call.state = CallState.EARLY
                if call.cancel_requested:
                    self._send_cancel(call, now)
            if resp.status > 100:
                sdp = resp.body if resp.content_type == "application/sdp" and resp.body else None
                if sdp is not None:
                    call.remote_sdp = sdp
                self._events.append(CallProgress(call, resp.status, resp.reason, sdp))
        elif resp.status < 300:
            self._on_invite_2xx(call, resp, now)
        elif resp.status in (401, 407) and self._retry_with_auth(call, resp, now):
            return
        else:
            outcome = outcome_for_status(resp.status, cancelled_by_us=call.cancel_requested)
            self._fail(call, resp.status, resp.reason, outcome)

    def _on_invite_2xx(self, call: Call, resp: Response, now: float) -> None:
        call.dialog = Dialog.as_uac(call.invite, resp)
        call.state = CallState.CONFIRMED
        if resp.body:
            call.remote_sdp = resp.body
        self._send_ack(call, resp)
        self._events.append(CallAnswered(call, resp.body or None))
        if call.cancel_requested:  # CANCEL lost the race with the answer (§9.1)
            self._start_client(self._in_dialog(call, "BYE"), call, call.peer, now)
            self._end(call, by_remote=False)

    def _send_ack(self, call: Call, resp: Response) -> None:
        """ACK for 2xx: end to end, new branch, same CSeq number (§13.2.2.4)."""
        dialog = call.dialog or Dialog.as_uac(call.invite, resp)
        ack = self._new_request("ACK", dialog.remote_target, call.call_id, call.invite.cseq.seq)
        ack.add("From", call.invite.get("From") or "")
        ack.add("To", resp.get("To") or "")
        for route in dialog.route_set:
            ack.add("Route", route)
        self._out.append((ack.serialise(), call.peer))

    def _retry_with_auth(self, call: Call, resp: Response, now: float) -> bool:
        proxy = resp.status == 407
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        cfg = self.config
        value = resp.get(header)
        if call.auth_tried or cfg.username is None or cfg.password is None or value is None:
            self._events.append(AuthRequired(call, resp.status))
            return False
        try:
            challenge = parse_challenge(value, proxy=proxy)
        except AuthError:
            return False
        old = call.invite
        req = self._new_request("INVITE", old.uri or parse_uri("sip:invalid"), call.call_id, 0)
        req.headers = [(k, v) for k, v in old.headers if k not in ("Via", "CSeq")]
        req.add("Via", self._via(), first=True)
        req.set("CSeq", f"{old.cseq.seq + 1} INVITE")
        req.body = old.body
        req.set(
            challenge.answer_header,
            authorization(
                challenge,
                username=cfg.username,
                password=cfg.password,
                method="INVITE",
                uri=str(old.uri),
            ),
        )
        call.invite, call.auth_tried, call.state = req, True, CallState.CALLING
        call.invite_tx = self._start_client(req, call, call.peer, now)
        return True

    def _fail(self, call: Call, status: int, reason: str, outcome: CallOutcome) -> None:
        call.state = CallState.TERMINATED
        self._calls.pop(call.call_id, None)
        self._events.append(CallFailed(call, status, reason, outcome))

    def _end(self, call: Call, *, by_remote: bool) -> None:
        call.state = CallState.TERMINATED
        self._calls.pop(call.call_id, None)
        self._events.append(CallEnded(call, by_remote))


def _host_of(uri: Uri) -> str:
    return uri.hostport if isinstance(uri, SipUri) else uri.rest


__all__ = [
    "Addr",
    "AuthRequired",
    "Call",
    "CallAnswered",
    "CallEnded",
    "CallFailed",
    "CallProgress",
    "CallState",
    "Endpoint",
    "EndpointConfig",
    "EndpointEvent",
    "IncomingCall",
    "IncomingRequest",
    "Registered",
    "Registration",
    "RegistrationFailed",
]
