"""``SipCarrier``: the :class:`carriers.base.Carrier` interface over SIP trunks.

One UDP socket carries all SIP (:class:`SipTransport`, one sans-IO
:class:`Endpoint` per trunk); each call leg gets its own RTP socket and
:class:`MediaSession` (:class:`RtpStream`).  What the engine sees:

* ``dial`` sends an INVITE offering PCMU, PCMA and telephone-event through the
  first trunk (by ``priority``, lower first) that has a free channel and a
  calls-per-second token; 503, no response within ``setup_timeout_s`` and a full
  trunk move the call to the next trunk.  With ``options_interval_s``, a trunk
  whose OPTIONS probes go unanswered is tried after all the others until it
  answers one again (:meth:`SipCarrier.trunk_down`).
* 180/183 -> :class:`Ringing` (``early_media`` when the provisional carries SDP);
  2xx -> :class:`Answered`, then :class:`MediaFrames` of the received RTP, with
  media time counted from the answer.
* ``hangup``: CANCEL before the answer, BYE after; the no-answer timeout sends
  CANCEL and the 487 that follows is ``no_answer``.
* Every leg ends with one :class:`Ended` carrying the outcome, the SIP status and
  ``extra`` = trunk, trunks tried, setup time.

Agents (``SipCarrierParams.agents``): the same socket takes REGISTER from the
agents' phones (digest authentication against ``agent_users``) and the carrier
calls each agent's phone once at login (``nail_up``), at a SIP URI or at the
phone's registered contact, and keeps that leg up for the session.  ``bridge``
joins a customer leg to it: a short tone to the agent, then RTP relayed both
ways (PCMU and PCMA transcoded through linear audio when the legs differ) and
RFC 4733 keys passed through.  When the agent's phone hangs up during a call,
or sends no RTP for ``line_rtp_timeout_s`` (it died without a BYE), the
customer leg is ended too, never left in silence.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

import numpy as np

from carriers.base import (
    AgentLegRequest,
    AgentLineDown,
    AgentLineEvent,
    AgentLineUp,
    Answered,
    AudioClip,
    CallOutcome,
    CarrierEvent,
    CarrierListener,
    DialRequest,
    Dtmf,
    Ended,
    MediaFrames,
    Ringing,
    Scheduler,
    cancel_timer,
)
from carriers.rtp.dtmf import DigitEvent
from carriers.rtp.g711 import PT_PCMA, PT_PCMU
from carriers.rtp.jitter import Frame
from carriers.rtp.prompt import from_samples
from carriers.rtp.session import MediaSession
from carriers.rtp.udp import PortsExhausted, ReceiveQueue, RtpPortPool, RtpStream
from carriers.sip.endpoint import (
    Call,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    CallState,
    Endpoint,
    EndpointConfig,
    IncomingCall,
    IncomingRequest,
    OptionsAnswered,
)
from carriers.sip.registrar import BindingAdded, BindingRemoved, Registrar
from carriers.sip.sdp import (
    MediaParams,
    SdpError,
    SdpNegotiationError,
    build_offer,
    parse_sdp,
    remote_media,
)
from carriers.sip.transaction import TimerParams
from carriers.sip.transport import SipTransport, TransportStats
from carriers.sip.uri import SipUri, parse_uri
from carriers.udp import Addr

log = logging.getLogger(__name__)

FAILOVER_STATUSES = frozenset({503})


class CarrierStartError(RuntimeError):
    """The carrier cannot start: a socket cannot be bound or a trunk not resolved."""


@dataclass(frozen=True, slots=True)
class Trunk:
    """One SIP trunk (a carrier's SBC or a PBX)."""

    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    username: str | None = None
    password: str | None = None
    caller_id: str = ""  # From user when the dial request gives none
    max_concurrent: int = 30
    max_cps: float = 5.0  # call set-ups per second (token bucket, burst = max(1, max_cps))
    priority: int = 0  # lower is tried first
    domain: str | None = None  # Request-URI host; default ``host``

    def __post_init__(self) -> None:
        if self.transport != "udp":
            raise ValueError(f"trunk {self.name}: transport {self.transport!r} (only udp)")
        if self.max_concurrent < 1 or self.max_cps <= 0:
            raise ValueError(f"trunk {self.name}: max_concurrent and max_cps must be positive")


@dataclass(frozen=True, slots=True)
class SipCarrierParams:
    trunks: tuple[Trunk, ...]
    bind_host: str = "127.0.0.1"
    bind_port: int = 5060  # 0: any free port (tests)
    public_host: str | None = None  # written in Via, Contact and SDP; default bind_host
    rtp_port_min: int = 20000  # 0 and 0: the OS picks each RTP port
    rtp_port_max: int = 30000
    setup_timeout_s: float = 4.0  # no response at all from a trunk: try the next one
    cancel_guard_s: float = 32.0  # after CANCEL, give up waiting for the final response
    user_agent: str = "dialer"
    match_port: bool = False  # trust a trunk's IP alone (False) or only its IP and port
    # OPTIONS to every trunk this often (keeps NAT bindings open, and probes the
    # trunk: one that leaves options_failures probes in a row unanswered within
    # setup_timeout_s is tried last until it answers again); 0: none
    options_interval_s: float = 0.0
    options_failures: int = 2
    timers: TimerParams = field(default_factory=TimerParams)
    # agents' phones: take REGISTER and call agents (off: trunks only, strangers get 403)
    agents: bool = False
    agent_users: tuple[tuple[str, str], ...] = ()  # (user, password) allowed to register
    realm: str = "dialer"
    line_answer_timeout_s: float = 20.0  # the agent's phone must answer the login call
    # a phone that sends no RTP this long is gone (crashed, unplugged, lost its network)
    # although no BYE came: its line is hung up so no customer is bridged to silence;
    # 0: never
    line_rtp_timeout_s: float = 60.0
    connect_tone_hz: float = 880.0  # heard by the agent as a customer is bridged; 0: none
    connect_tone_s: float = 0.12

    def __post_init__(self) -> None:
        if not self.trunks:
            raise ValueError("at least one trunk is required")
        names = [t.name for t in self.trunks]
        if len(set(names)) != len(names):
            raise ValueError(f"trunk names must be unique: {names}")
        if self.bind_host in ("0.0.0.0", "::") and not self.public_host:
            raise ValueError("public_host is required when bind_host is a wildcard address")
        if self.options_failures < 1:
            raise ValueError(f"options_failures must be >= 1, got {self.options_failures}")
        if not self.line_rtp_timeout_s >= 0:
            raise ValueError(f"line_rtp_timeout_s must be >= 0, got {self.line_rtp_timeout_s}")


@dataclass(eq=False, slots=True)
class _TrunkState:
    trunk: Trunk
    endpoint: Endpoint | None = None
    addr: Addr | None = None
    active: int = 0
    tokens: float = 0.0
    refilled_at: float = 0.0
    # OPTIONS probes: unanswered in a row, and the one in flight (Call-ID, timer)
    probe_failures: int = 0
    probe: tuple[str, object] | None = None
    down: bool = False

    @property
    def burst(self) -> float:
        return max(1.0, self.trunk.max_cps)

    def capacity(self, now: float) -> int:
        if self.endpoint is None:
            return 0
        self.tokens = min(self.burst, self.tokens + (now - self.refilled_at) * self.trunk.max_cps)
        self.refilled_at = now
        return max(0, min(self.trunk.max_concurrent - self.active, math.floor(self.tokens)))


@dataclass(eq=False, slots=True)
class _Leg:
    request: DialRequest
    candidates: list[_TrunkState]
    stream: RtpStream
    t_dial: float
    state: _TrunkState | None = None
    call: Call | None = None
    tried: list[str] = field(default_factory=list)
    counted: bool = False  # holds a channel on ``state``
    ringing: bool = False
    early: bool = False
    answered: bool = False
    t_answer: float | None = None
    hangup_requested: bool = False
    timed_out: bool = False
    ended: bool = False
    last_status: int | None = None
    last_cause: str = ""
    timers: dict[str, object] = field(default_factory=dict)
    frames: int = 0
    line: _Line | None = None  # the agent's leg this customer is bridged to
    partner: _Leg | None = None  # a transfer: the other call leg this one is joined to


@dataclass(eq=False, slots=True)
class _Transfer:
    customer: _Leg
    on_result: Callable[[bool, str], None]
    joined: bool = False


@dataclass(eq=False, slots=True)
class _Line:
    """An agent's nailed-up leg."""

    agent_id: str
    target: str
    stream: RtpStream
    call: Call | None = None
    addr: Addr | None = None
    up: bool = False
    ended: bool = False
    customer: _Leg | None = None
    timer: object | None = None  # the answer timeout, then the RTP watchdog
    up_at: float = 0.0


@dataclass(slots=True)
class CarrierStats:
    dials: int = 0
    invites: int = 0
    failovers: int = 0
    answered: int = 0
    frames: int = 0  # 20 ms frames delivered to the listener
    ended: dict[str, int] = field(default_factory=dict)
    lines_up: int = 0
    lines_down: dict[str, int] = field(default_factory=dict)
    bridges: int = 0
    trunk_events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, trunk, up|down)
    relayed_frames: int = 0  # 20 ms frames carried across bridges, both ways
    # seconds from bridge() to the first RTP packet sent to the agent (the tone)
    bridge_to_audio: list[float] = field(default_factory=list)


class SipCarrier:
    """Outbound calls over SIP/UDP trunks (see the module docstring)."""

    name = "sip"

    def __init__(
        self,
        scheduler: Scheduler,
        params: SipCarrierParams,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.params = params
        self._rng = rng if rng is not None else np.random.default_rng()
        self._listener: CarrierListener | None = None
        self._trunks = [_TrunkState(t) for t in params.trunks]
        self._by_name = {s.trunk.name: s for s in self._trunks}
        self._transport = SipTransport(scheduler, self._service, params.match_port)
        self._pool: RtpPortPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rtp_queue: ReceiveQueue | None = None
        self._legs: dict[str, _Leg] = {}
        self._by_sip: dict[str, _Leg] = {}
        self._clips: dict[tuple[str, int], tuple[bytes, ...]] = {}
        self._busy = False
        self._dirty: list[Endpoint] = []
        self._session_ids = count(int(self._rng.integers(1, 2**31)))
        self.stats = CarrierStats()
        self.started = False
        self._keepalives: dict[str, object] = {}
        self.public_host = params.public_host or params.bind_host  # set again at start
        # the agents' side: one endpoint for their phones, their legs by agent and SIP Call-ID
        self._agent_ep: Endpoint | None = None
        self._line_listener: Callable[[AgentLineEvent], None] | None = None
        self._lines: dict[str, _Line] = {}
        self._lines_by_sip: dict[str, _Line] = {}
        self.registrar: Registrar | None = None
        self._registrar_timer: object | None = None
        self._tone = _connect_tone(params.connect_tone_hz, params.connect_tone_s)
        # transfers: our own calls to transfer targets, by their call ids
        self._transfers: dict[str, _Transfer] = {}

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        if self.started:
            return
        loop = self._loop = asyncio.get_running_loop()
        self._rtp_queue = ReceiveQueue(loop)
        p = self.params
        try:
            host, port = self._transport.bind(loop, p.bind_host, p.bind_port)
        except OSError as exc:
            where = f"{p.bind_host}:{p.bind_port}"
            raise CarrierStartError(f"cannot bind the SIP socket {where}: {exc.strerror}") from None
        public = p.public_host or host
        self._pool = RtpPortPool(p.bind_host, p.rtp_port_min, p.rtp_port_max)
        self.public_host = public
        now = self.scheduler.monotonic()
        for state in self._trunks:
            t = state.trunk
            try:
                addr = await _resolve(loop, t.host, t.port, t.name)
            except CarrierStartError:
                self._transport.close()
                raise
            state.addr = addr
            state.endpoint = Endpoint(
                EndpointConfig(
                    host=public,
                    port=port,
                    user="dialer",
                    username=t.username,
                    password=t.password,
                    user_agent=p.user_agent,
                    timers=p.timers,
                )
            )
            state.tokens, state.refilled_at = state.burst, now
            self._transport.add_peer(addr, state.endpoint)
        if p.agents:
            self._agent_ep = Endpoint(
                EndpointConfig(
                    host=public, port=port, user="dialer", user_agent=p.user_agent, timers=p.timers
                )
            )
            self._transport.set_default(self._agent_ep)
            self.registrar = Registrar(p.realm, dict(p.agent_users))
        self.started = True
        if p.options_interval_s > 0:
            for state in self._trunks:
                self._keepalive(state)

    def _keepalive(self, state: _TrunkState) -> None:
        """OPTIONS to the trunk now and every ``options_interval_s``: keeps NAT
        bindings open, and an answer within ``setup_timeout_s`` shows the trunk up."""
        if not self.started or state.endpoint is None or state.addr is None:
            return
        t = state.trunk
        now = self.scheduler.monotonic()
        if state.probe is not None:
            self._probe_result(state, None)  # the last one was never answered
        req = state.endpoint.options(f"sip:{t.domain or t.host}:{t.port}", state.addr, now)
        call_id = req.call_id
        timer = self.scheduler.call_at(
            now + self.params.setup_timeout_s, lambda: self._probe_late(state, call_id)
        )
        state.probe = (call_id, timer)
        self._service(state.endpoint)
        self._keepalives[t.name] = self.scheduler.call_at(
            now + self.params.options_interval_s, lambda: self._keepalive(state)
        )

    def _probe_late(self, state: _TrunkState, call_id: str) -> None:
        if state.probe is not None and state.probe[0] == call_id:
            self._probe_result(state, None)

    def _probe_result(self, state: _TrunkState, status: int | None) -> None:
        """An OPTIONS probe answered (any final status: the trunk is there) or not
        (None, or 408 from our own transaction)."""
        if state.probe is not None:
            cancel_timer(state.probe[1])
            state.probe = None
        name = state.trunk.name
        if status is not None and status != 408:
            if state.down:
                log.warning("trunk %s: answers OPTIONS again (%d): back in use", name, status)
                self.stats.trunk_events.append((self.scheduler.monotonic(), name, "up"))
            state.probe_failures, state.down = 0, False
            return
        state.probe_failures += 1
        if not state.down and state.probe_failures >= self.params.options_failures:
            state.down = True
            log.warning(
                "trunk %s: %d OPTIONS probes unanswered: tried last until it answers",
                name,
                state.probe_failures,
            )
            self.stats.trunk_events.append((self.scheduler.monotonic(), name, "down"))

    def trunk_states(self) -> dict[str, bool]:
        """Trunk name -> answering its probes (True also while probes are off)."""
        return {s.trunk.name: not s.down for s in self._trunks}

    def trunk_down(self, name: str) -> bool:
        """Whether the trunk's OPTIONS probes have gone unanswered (see params)."""
        state = self._by_name.get(name)
        return state is not None and state.down

    @property
    def local_addr(self) -> Addr:
        """Where the SIP socket is bound (port 0 in the params becomes the real one)."""
        return self._transport.local_addr

    @property
    def transport_stats(self) -> TransportStats:
        return self._transport.stats

    async def stop(self) -> None:
        for agent_id in list(self._lines):
            self.release(agent_id)
        for call_id in list(self._legs):
            self.hangup(call_id)
        for leg in list(self._legs.values()):  # CANCELled, their 487 not yet in
            outcome = CallOutcome.ANSWERED if leg.answered else CallOutcome.NO_ANSWER
            self._finish(leg, outcome, leg.last_status, "carrier stopped", False)
        for handle in self._keepalives.values():
            cancel_timer(handle)
        self._keepalives.clear()
        for state in self._trunks:
            if state.probe is not None:
                cancel_timer(state.probe[1])
                state.probe = None
        cancel_timer(self._registrar_timer)
        self._transport.close()
        self.started = False

    # -- the Carrier interface ----------------------------------------------------------
    def set_listener(self, listener: CarrierListener) -> None:
        self._listener = listener

    def free_channels(self) -> int:
        if not self.started or self._pool is None:
            return 0
        now = self.scheduler.monotonic()
        return min(sum(s.capacity(now) for s in self._trunks), self._pool.free)

    def dial(self, request: DialRequest) -> None:
        now = self.scheduler.monotonic()
        self.stats.dials += 1
        if request.call_id in self._legs:
            return
        if not self.started or self._pool is None or self._loop is None:
            self._fail_soon(request, CallOutcome.FAILED, None, "carrier not started")
            return
        if request.trunk is not None:
            named = self._by_name.get(request.trunk)
            if named is None:
                self._fail_soon(
                    request, CallOutcome.FAILED, None, f"unknown trunk {request.trunk!r}"
                )
                return
            candidates = [named]
        else:
            # a trunk whose probes go unanswered is tried last, not skipped: a probe
            # can be lost or filtered while the trunk still takes calls
            candidates = sorted(
                self._trunks, key=lambda s: (s.down, s.trunk.priority, s.trunk.name)
            )
        try:
            stream = RtpStream(
                self.scheduler, self._pool, self._loop, lambda f, t: None, self._rtp_queue
            )
        except (PortsExhausted, OSError) as exc:
            self._fail_soon(request, CallOutcome.TRUNK_FAILURE, None, f"no RTP port: {exc}")
            return
        leg = _Leg(request, candidates, stream, now)
        stream.on_frames = lambda frames, at: self._frames(leg, frames, at)
        stream.on_digits = lambda digits, at: self._digits(leg, digits, at)
        self._legs[request.call_id] = leg
        leg.timers["no_answer"] = self.scheduler.call_at(
            now + request.timeout_s, lambda: self._no_answer(leg)
        )
        self._try_next(leg, now, in_dial=True)

    def hangup(self, call_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is None or leg.ended or leg.hangup_requested:
            return
        leg.hangup_requested = True
        now = self.scheduler.monotonic()
        call, state = leg.call, leg.state
        if call is None or state is None or state.endpoint is None:
            self._finish(leg, CallOutcome.NO_ANSWER, None, "local hangup", False)
            return
        ep = state.endpoint
        if leg.answered:
            ep.bye(call, now)  # CallEnded(by_remote=False) follows at once
        elif call.state is CallState.CALLING:
            # No provisional yet, so no CANCEL may be sent (RFC 3261 §9.1): the
            # endpoint holds it (and BYEs a late 2xx); the engine hears now.
            ep.cancel(call, now)
            self._detach(leg)
            self._finish(
                leg, CallOutcome.NO_ANSWER, None, "local hangup before any response", False
            )
        else:
            ep.cancel(call, now)
            self._guard_cancel(leg, now)
        self._service(ep)

    def play(self, call_id: str, clip: AudioClip, on_done: Callable[[], None]) -> None:
        leg = self._legs.get(call_id)
        if leg is None or leg.ended or not leg.answered or leg.stream.session is None:
            return
        pt = leg.stream.session.payload_type
        key = (clip.clip_id, pt)
        payloads = self._clips.get(key)
        if payloads is None:
            if len(self._clips) > 256:
                self._clips.clear()
            payloads = self._clips[key] = from_samples(clip.clip_id, clip.samples).payloads(pt)
        leg.stream.play(payloads, on_done)

    def bridge(self, call_id: str, agent_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is None or leg.ended:
            return
        line = self._lines.get(agent_id)
        if line is None or not line.up or line.ended:
            # nobody to hear the customer: end the call rather than leave them in silence
            log.warning("bridge %s -> %s: the agent's line is not up", call_id, agent_id)
            leg.last_cause = f"agent {agent_id}'s phone line is not up"
            self.hangup(call_id)
            return
        if line.customer is not None and line.customer is not leg:
            self._unlink(line.customer)
        self._unlink(leg)
        leg.line, line.customer = line, leg
        leg.stream.relay_to, line.stream.relay_to = line.stream, leg.stream
        self.stats.bridges += 1
        t_bridge = self.scheduler.monotonic()

        def first_sent(at: float) -> None:
            delays = self.stats.bridge_to_audio
            if len(delays) >= 100_000:
                del delays[: len(delays) // 2]
            delays.append(max(0.0, at - t_bridge))

        # the connect tone, or else the customer's first relayed packet
        line.stream.on_first_sent = first_sent
        session = line.stream.session
        if session is not None:
            session.stop_playing()
        if len(self._tone):
            line.stream.forward(self._tone)

    def unbridge(self, call_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is not None:
            self._unlink(leg)

    def _unlink(self, leg: _Leg) -> None:
        line, leg.line = leg.line, None
        self._settle(leg.stream)
        if line is not None and line.customer is leg:
            line.customer = None
            line.stream.on_first_sent = None
            self._settle(line.stream)
            if line.stream.session is not None:
                line.stream.session.stop_playing()

    def _settle(self, stream: RtpStream) -> None:
        """End a stream's relaying, counting what it relayed."""
        stream.relay_to = None
        self.stats.relayed_frames += stream.relayed
        stream.relayed = 0

    def relayed_total(self) -> int:
        """20 ms frames carried across bridges and transfers so far, both ways."""
        live = [leg.stream for leg in self._legs.values()]
        live += [line.stream for line in self._lines.values()]
        return self.stats.relayed_frames + sum(st.relayed for st in live)

    # -- transfers: a customer joined to another number ---------------------------------
    def transfer(self, call_id: str, number: str, on_result: Callable[[bool, str], None]) -> None:
        leg = self._legs.get(call_id)
        now = self.scheduler.monotonic()
        if leg is None or leg.ended or not leg.answered:
            self.scheduler.call_at(now, lambda: on_result(False, "the call is not answered"))
            return
        xid = f"{call_id}/transfer"
        if xid in self._transfers:
            self.scheduler.call_at(now, lambda: on_result(False, "a transfer is under way"))
            return
        self._transfers[xid] = _Transfer(leg, on_result)
        req = leg.request
        self.dial(DialRequest(xid, number, req.caller_id, 30.0, req.campaign))

    def _transfer_event(self, event: CarrierEvent) -> None:
        t = self._transfers[event.call_id]
        customer, target = t.customer, self._legs.get(event.call_id)
        if isinstance(event, Answered):
            if target is None or customer.ended:
                self.hangup(event.call_id)
                return
            self._unlink(customer)
            customer.partner, target.partner = target, customer
            customer.stream.relay_to, target.stream.relay_to = target.stream, customer.stream
            t.joined = True
            if customer.stream.session is not None:
                customer.stream.session.stop_playing()  # the hold message
            t.on_result(True, "")
        elif isinstance(event, Ended):
            del self._transfers[event.call_id]
            if not t.joined:
                t.on_result(False, event.cause or event.outcome.value)
            # joined: whichever side ended first has ended the other (``_finish``)

    # -- agents' phones: the nailed-up legs ---------------------------------------------
    def set_line_listener(self, listener: Callable[[AgentLineEvent], None]) -> None:
        self._line_listener = listener

    def line_up(self, agent_id: str) -> bool:
        line = self._lines.get(agent_id)
        return line is not None and line.up and not line.ended

    def nail_up(self, request: AgentLegRequest) -> None:
        now = self.scheduler.monotonic()
        old = self._lines.get(request.agent_id)
        if old is not None and not old.ended:
            if old.up:
                self._line_event(AgentLineUp(request.agent_id, now), soon=True)
            return  # a call to the phone is already on its way
        ep = self._agent_ep
        if not self.started or ep is None or self._pool is None or self._loop is None:
            why = "agents are not enabled on this carrier" if self.started else "not started"
            self._line_event(AgentLineDown(request.agent_id, now, why, False), soon=True)
            return
        where = self._phone_address(request.target)
        if isinstance(where, str):
            self._line_event(AgentLineDown(request.agent_id, now, where, False), soon=True)
            return
        uri, addr = where
        try:
            stream = RtpStream(
                self.scheduler, self._pool, self._loop, lambda f, t: None, self._rtp_queue
            )
        except (PortsExhausted, OSError) as exc:
            self._line_event(
                AgentLineDown(request.agent_id, now, f"no RTP port: {exc}", False), soon=True
            )
            return
        line = _Line(request.agent_id, request.target, stream, addr=addr)
        stream.on_frames = lambda frames, at: self._line_frames(line, frames)
        stream.on_digits = lambda digits, at: self._line_digits(line, digits)
        self._lines[request.agent_id] = line
        offer = build_offer(self.public_host, stream.local_addr[1], next(self._session_ids))
        self._transport.pin(addr)
        call = ep.invite(uri, offer.serialise(), addr, now, from_user="dialer")
        line.call = call
        self._lines_by_sip[call.call_id] = line
        line.timer = self.scheduler.call_at(
            now + self.params.line_answer_timeout_s, lambda: self._line_timeout(line)
        )
        self._service(ep)

    def release(self, agent_id: str) -> None:
        line = self._lines.get(agent_id)
        if line is None or line.ended:
            return
        ep, call = self._agent_ep, line.call
        now = self.scheduler.monotonic()
        if ep is not None and call is not None:
            if line.up:
                ep.bye(call, now)
            else:
                ep.cancel(call, now)
            self._service(ep)
        self._line_down(line, "released by the engine", by_remote=False)

    def _phone_address(self, target: str) -> tuple[str, Addr] | str:
        """The Request-URI and address for an agent's phone, or why there is none."""
        if target.startswith(("sip:", "sips:")):
            try:
                uri = parse_uri(target, where="agent phone URI")
            except ValueError as exc:
                return f"bad phone URI {target!r}: {exc}"
            if not isinstance(uri, SipUri) or uri.scheme != "sip":
                return f"phone URI {target!r} is not a sip: URI"
            try:
                ipaddress.ip_address(uri.host)
            except ValueError:
                return f"phone URI {target!r}: the host must be an IP address"
            return str(uri), (uri.host, uri.port or 5060)
        if ":" in target:
            return f"phone target {target!r} is neither a sip: URI nor a registered user"
        binding = (
            self.registrar.lookup(target, self.scheduler.monotonic()) if self.registrar else None
        )
        if binding is None:
            return f"no phone registered as {target!r}"
        return binding.contact, binding.addr

    def _registrar_changed(self, now: float) -> None:
        """Pin the addresses of registered phones (their datagrams are agents'
        traffic even on a trunk's host) and re-arm the expiry timer."""
        reg = self.registrar
        if reg is None:
            return
        while (ev := reg.next_event()) is not None:
            b = ev.binding
            if isinstance(ev, BindingAdded):
                self._transport.pin(b.addr)
            elif isinstance(ev, BindingRemoved):
                log.info("phone %s: binding %s %s", b.user, b.contact, ev.reason)
                in_use = any(x.addr == b.addr for x in self._lines.values()) or any(
                    o.addr == b.addr for o in reg.bindings(now)
                )
                if not in_use:
                    self._transport.unpin(b.addr)
        cancel_timer(self._registrar_timer)
        self._registrar_timer = None
        when = reg.get_timer()
        if when is not None and self.started:

            def expire() -> None:
                self._registrar_timer = None
                t = self.scheduler.monotonic()
                reg.handle_timer(t)
                self._registrar_changed(t)

            self._registrar_timer = self.scheduler.call_at(when, expire)

    def _line_timeout(self, line: _Line) -> None:
        line.timer = None
        if line.ended or line.up:
            return
        ep, call = self._agent_ep, line.call
        if ep is not None and call is not None:
            ep.cancel(call, self.scheduler.monotonic())
            self._service(ep)
        self._line_down(line, "the agent's phone did not answer", by_remote=True)

    def _watch_line(self, line: _Line) -> None:
        """Hang up a line whose phone has sent nothing for ``line_rtp_timeout_s``;
        otherwise look again when that much time will have passed since the last
        packet."""
        line.timer = None
        limit = self.params.line_rtp_timeout_s
        if limit <= 0 or line.ended or not line.up:
            return
        now = self.scheduler.monotonic()
        heard = line.stream.last_received_at
        last = max(heard if heard is not None else line.up_at, line.up_at)
        if now - last < limit:
            line.timer = self.scheduler.call_at(last + limit, lambda: self._watch_line(line))
            return
        # down first, with this cause: the BYE's own CallEnded would say "released"
        self._line_down(line, f"no audio from the agent's phone for {limit:g} s", by_remote=True)
        ep, call = self._agent_ep, line.call
        if ep is not None and call is not None:
            ep.bye(call, now)
            self._service(ep)

    def _pump_agents(self, ep: Endpoint, ev: object, now: float) -> None:
        if isinstance(ev, IncomingCall):
            ep.reject(ev.call, 403, now)  # agents are called by us, never the other way
            return
        if isinstance(ev, IncomingRequest):
            if ev.request.method == "REGISTER" and self.registrar is not None:
                ep.respond(ev.request, self.registrar.handle(ev.request, ev.addr, now), now)
                self._registrar_changed(now)
            else:
                ep.respond(ev.request, 405, now)  # SUBSCRIBE, MESSAGE...: not for agents
            return
        call = getattr(ev, "call", None)
        line = self._lines_by_sip.get(call.call_id) if call is not None else None
        if line is None or line.call is not call or line.ended:
            return
        if isinstance(ev, CallAnswered):
            media = _media_of(ev.sdp) if ev.sdp is not None else None
            if media is None:
                ep.bye(ev.call, now)
                self._line_down(line, "the phone answered without usable SDP", by_remote=True)
                return
            line.stream.start(self._session_for(media), (media.address, media.port))
            line.up, line.up_at = True, now
            self.stats.lines_up += 1
            cancel_timer(line.timer)
            line.timer = None
            self._watch_line(line)
            self._line_event(AgentLineUp(line.agent_id, now))
        elif isinstance(ev, CallFailed):
            self._line_down(line, f"the phone answered {ev.status} {ev.reason}", by_remote=True)
        elif isinstance(ev, CallEnded):
            self._line_down(
                line,
                "the agent's phone hung up" if ev.by_remote else "released by the engine",
                by_remote=ev.by_remote,
            )

    def _line_down(self, line: _Line, cause: str, by_remote: bool) -> None:
        if line.ended:
            return
        line.ended = True
        cancel_timer(line.timer)
        line.timer = None
        if line.call is not None:
            self._lines_by_sip.pop(line.call.call_id, None)
        if self._lines.get(line.agent_id) is line:
            del self._lines[line.agent_id]
        if line.addr is not None and not any(x.addr == line.addr for x in self._lines.values()):
            self._transport.unpin(line.addr)
        self._settle(line.stream)
        line.stream.close()
        key = cause.split(":")[0]
        self.stats.lines_down[key] = self.stats.lines_down.get(key, 0) + 1
        customer = line.customer
        if customer is not None:
            self._unlink(customer)
            if not customer.ended:
                customer.last_cause = f"agent {line.agent_id}: {cause}"
                self.hangup(customer.request.call_id)
        self._line_event(AgentLineDown(line.agent_id, self.scheduler.monotonic(), cause, by_remote))

    def _line_event(self, event: AgentLineEvent, soon: bool = False) -> None:
        listener = self._line_listener
        if listener is None:
            return
        if soon:
            self.scheduler.call_at(self.scheduler.monotonic(), lambda: listener(event))
        else:
            listener(event)

    def _line_frames(self, line: _Line, frames: list[Frame]) -> None:
        leg = line.customer
        if leg is None or leg.ended:
            return
        for f in frames:
            leg.stream.forward(f.samples)
        self.stats.relayed_frames += len(frames)

    def _line_digits(self, line: _Line, digits: list[DigitEvent]) -> None:
        leg = line.customer
        if leg is None or leg.ended:
            return
        for d in digits:
            leg.stream.forward_digit(d.digit, d.duration_s)

    # -- placing the INVITE -------------------------------------------------------------
    def _try_next(self, leg: _Leg, now: float, in_dial: bool = False) -> None:
        while leg.candidates:
            state = leg.candidates.pop(0)
            if state.capacity(now) >= 1:
                self._invite(leg, state, now)
                return
            leg.tried.append(f"{state.trunk.name}:full")
        cause = f"all trunks: {leg.last_cause or 'no trunk with a free channel'}"
        if in_dial:
            # the engine does not expect events from inside its own dial()
            def later() -> None:
                self._finish(leg, CallOutcome.TRUNK_FAILURE, leg.last_status, cause, True)

            self.scheduler.call_at(now, later)
        else:
            self._finish(leg, CallOutcome.TRUNK_FAILURE, leg.last_status, cause, True)

    def _invite(self, leg: _Leg, state: _TrunkState, now: float) -> None:
        ep, addr = state.endpoint, state.addr
        assert ep is not None and addr is not None
        t = state.trunk
        offer = build_offer(
            self.public_host, leg.stream.local_addr[1], next(self._session_ids)
        ).serialise()
        host = t.domain or t.host
        target = f"sip:{leg.request.number}@{host}:{t.port}"
        from_user = _uri_user(leg.request.caller_id or t.caller_id or "dialer")
        call = ep.invite(target, offer, addr, now, from_user=from_user)
        state.active += 1
        state.tokens -= 1
        leg.state, leg.call, leg.counted = state, call, True
        leg.tried.append(t.name)
        leg.ringing = leg.early = False
        self._by_sip[call.call_id] = leg
        self.stats.invites += 1
        self._rearm(
            leg,
            "setup",
            now + self.params.setup_timeout_s,
            lambda: self._setup_timeout(leg, call),
        )
        self._service(ep)

    def _setup_timeout(self, leg: _Leg, call: Call) -> None:
        leg.timers.pop("setup", None)
        if leg.ended or leg.call is not call or call.state is not CallState.CALLING:
            return
        state = leg.state
        assert state is not None and state.endpoint is not None
        now = self.scheduler.monotonic()
        state.endpoint.cancel(call, now)  # held; a late 2xx gets a BYE
        self._detach(leg)
        leg.last_status, leg.last_cause = 408, f"{state.trunk.name} did not respond"
        if leg.hangup_requested or leg.timed_out:
            self._finish(leg, CallOutcome.NO_ANSWER, None, "no response", False)
        else:
            self.stats.failovers += 1
            self._try_next(leg, now)
        self._service(state.endpoint)

    def _no_answer(self, leg: _Leg) -> None:
        leg.timers.pop("no_answer", None)
        if leg.ended or leg.answered or leg.timed_out:
            return
        leg.timed_out = True
        now = self.scheduler.monotonic()
        call, state = leg.call, leg.state
        if call is None or state is None or state.endpoint is None:
            self._finish(leg, CallOutcome.NO_ANSWER, None, "no-answer timeout", False)
            return
        state.endpoint.cancel(call, now)
        if call.state is CallState.CALLING:
            self._detach(leg)
            self._finish(leg, CallOutcome.NO_ANSWER, None, "no-answer timeout", False)
        else:
            self._guard_cancel(leg, now)
        self._service(state.endpoint)

    def _guard_cancel(self, leg: _Leg, now: float) -> None:
        def give_up() -> None:
            leg.timers.pop("cancel", None)
            if not leg.ended:
                self._detach(leg)
                self._finish(leg, CallOutcome.NO_ANSWER, None, "no final response to CANCEL", False)

        self._rearm(leg, "cancel", now + self.params.cancel_guard_s, give_up)

    def _detach(self, leg: _Leg) -> None:
        """Stop listening to the leg's current SIP call (it is left to the endpoint)."""
        if leg.call is not None:
            self._by_sip.pop(leg.call.call_id, None)
        if leg.counted and leg.state is not None:
            leg.state.active -= 1
        leg.counted = False
        leg.call = None
        self._cancel_timer(leg, "setup")

    # -- endpoint events ----------------------------------------------------------------
    def _service(self, endpoint: Endpoint) -> None:
        """Read the endpoint's events and send its output until both are quiet.  Not
        re-entered: a listener that calls back in (hangup from an event) only marks
        the endpoint for another round."""
        self._dirty.append(endpoint)
        if self._busy:
            return
        self._busy = True
        try:
            while self._dirty:
                ep = self._dirty.pop()
                handled = self._pump(ep)
                self._transport.flush(ep)
                if handled or self._pump(ep):
                    self._dirty.append(ep)
        finally:
            self._busy = False

    def _pump(self, ep: Endpoint) -> int:
        n = 0
        while (ev := ep.next_event()) is not None:
            n += 1
            now = self.scheduler.monotonic()
            if ep is self._agent_ep:
                self._pump_agents(ep, ev, now)
                continue
            if isinstance(ev, IncomingCall):
                ep.reject(ev.call, 603, now)  # outbound only; nobody to take it
                continue
            if isinstance(ev, IncomingRequest):
                ep.respond(ev.request, 501, now)  # INFO, MESSAGE, REGISTER...: not ours
                continue
            if isinstance(ev, OptionsAnswered):
                cid = ev.request.call_id
                for state in self._trunks:
                    if state.endpoint is ep and state.probe is not None and state.probe[0] == cid:
                        self._probe_result(state, ev.status)
                continue
            call = getattr(ev, "call", None)
            if call is None:
                continue
            leg = self._by_sip.get(call.call_id)
            if leg is None or leg.call is not call or leg.ended:
                continue
            if isinstance(ev, CallProgress):
                self._progress(leg, ev, now)
            elif isinstance(ev, CallAnswered):
                self._answered(leg, ev, now)
            elif isinstance(ev, CallFailed):
                self._failed(leg, ev, now)
            elif isinstance(ev, CallEnded):
                self._ended(leg, ev)
        return n

    def _progress(self, leg: _Leg, ev: CallProgress, now: float) -> None:
        self._cancel_timer(leg, "setup")
        if ev.sdp is not None and not leg.early:
            media = _media_of(ev.sdp)
            if media is not None:
                # Early media: decoded (so jitter state is warm) but not delivered
                # to the engine, which listens from the answer.
                leg.stream.start(self._session_for(media), (media.address, media.port))
                leg.early = True
                self._emit(Ringing(leg.request.call_id, now, early_media=True))
                leg.ringing = True
                return
        if not leg.ringing:
            leg.ringing = True
            self._emit(Ringing(leg.request.call_id, now, early_media=False))

    def _answered(self, leg: _Leg, ev: CallAnswered, now: float) -> None:
        self._cancel_timer(leg, "setup")
        self._cancel_timer(leg, "no_answer")
        self._cancel_timer(leg, "cancel")
        if leg.hangup_requested or leg.timed_out:
            return  # the endpoint sends BYE itself (CANCEL lost the race)
        leg.answered, leg.t_answer, leg.last_status, leg.last_cause = True, now, 200, ""
        self.stats.answered += 1
        media = _media_of(ev.sdp) if ev.sdp is not None else None
        if media is None and leg.stream.remote is not None and leg.stream.session is not None:
            # No SDP in the 2xx: the early-media description stands (RFC 3264 §4).
            session, remote = leg.stream.session, leg.stream.remote
            leg.stream.start(
                MediaSession(session.payload_type, session.telephone_event_pt, self._rng), remote
            )
        elif media is not None:
            leg.stream.start(self._session_for(media), (media.address, media.port))
        else:
            self._emit(Answered(leg.request.call_id, now, sip_status=200))
            leg.last_cause = "answer without usable SDP"
            self.hangup(leg.request.call_id)
            return
        self._emit(Answered(leg.request.call_id, now, sip_status=200))

    def _failed(self, leg: _Leg, ev: CallFailed, now: float) -> None:
        self._detach(leg)
        trunk = leg.state.trunk.name if leg.state is not None else "?"
        leg.last_status, leg.last_cause = ev.status, f"{trunk}: {ev.status} {ev.reason}"
        if leg.timed_out or leg.hangup_requested:
            cause = "no-answer timeout" if leg.timed_out else "local hangup"
            self._finish(leg, CallOutcome.NO_ANSWER, ev.status, cause, False)
            return
        timeout = ev.status == 408 and ev.outcome is CallOutcome.TRUNK_FAILURE
        if (ev.status in FAILOVER_STATUSES or timeout) and leg.candidates:
            self.stats.failovers += 1
            self._try_next(leg, now)
            return
        self._finish(leg, ev.outcome, ev.status, f"{ev.status} {ev.reason}", True)

    def _ended(self, leg: _Leg, ev: CallEnded) -> None:
        self._detach(leg)
        cause = leg.last_cause or ("remote BYE" if ev.by_remote else "local BYE")
        self._finish(leg, CallOutcome.ANSWERED, 200, cause, ev.by_remote)

    # -- media --------------------------------------------------------------------------
    def _session_for(self, media: MediaParams) -> MediaSession:
        te = media.telephone_event_pt
        te = te if te is not None and 96 <= te <= 127 else None
        return MediaSession(media.codec.payload_type, te, self._rng)

    def _frames(self, leg: _Leg, frames: list[Frame], now: float) -> None:
        if not leg.answered or leg.ended:
            return
        relay = leg.line.stream if leg.line is not None and not leg.line.ended else None
        if leg.partner is not None and not leg.partner.ended:
            relay = leg.partner.stream
        if relay is not None:
            # bridged (an agent) or joined (a transfer): the other side hears this
            # leg; the engine has stopped listening
            for f in frames:
                relay.forward(f.samples)
            self.stats.relayed_frames += len(frames)
            return
        samples = (
            frames[0].samples if len(frames) == 1 else np.concatenate([f.samples for f in frames])
        )
        leg.frames += len(frames)
        self.stats.frames += len(frames)
        self._emit(MediaFrames(leg.request.call_id, now, frames[0].media_time, samples))

    def _digits(self, leg: _Leg, digits: list[DigitEvent], now: float) -> None:
        if not leg.answered or leg.ended:
            return  # keys during early media are not an answer to anything we asked
        relay = leg.line.stream if leg.line is not None and not leg.line.ended else None
        if leg.partner is not None and not leg.partner.ended:
            relay = leg.partner.stream
        if relay is not None:
            for d in digits:
                relay.forward_digit(d.digit, d.duration_s)
            return
        for d in digits:
            self._emit(Dtmf(leg.request.call_id, now, d.digit))

    # -- ending -------------------------------------------------------------------------
    def _finish(
        self,
        leg: _Leg,
        outcome: CallOutcome,
        status: int | None,
        cause: str,
        by_remote: bool,
    ) -> None:
        if leg.ended:
            return
        leg.ended = True
        self._unlink(leg)
        partner, leg.partner = leg.partner, None
        self._settle(leg.stream)
        if partner is not None:
            self._settle(partner.stream)
        if partner is not None and not partner.ended:
            partner.partner = None
            partner.last_cause = f"the other side of the transfer hung up ({cause})"
            self.hangup(partner.request.call_id)
        pending = self._transfers.get(f"{leg.request.call_id}/transfer")
        if pending is not None and not pending.joined:
            self.hangup(f"{leg.request.call_id}/transfer")  # the customer left first
        for name in list(leg.timers):
            self._cancel_timer(leg, name)
        self._detach(leg)
        leg.stream.close()
        self._legs.pop(leg.request.call_id, None)
        self.stats.ended[outcome.value] = self.stats.ended.get(outcome.value, 0) + 1
        now = self.scheduler.monotonic()
        extra = {
            "trunk": leg.state.trunk.name if leg.state is not None else "",
            "tried": ",".join(leg.tried),
            "setup_ms": str(round(((leg.t_answer or now) - leg.t_dial) * 1000)),
            "rtp_frames": str(leg.frames),
        }
        session = leg.stream.session
        if session is not None and leg.answered:
            extra["rtp_packets"] = str(session.stats.received)
            extra["rtp_lost"] = str(session.stats.lost)
        self._emit(
            Ended(
                leg.request.call_id, now, outcome, status, cause, by_remote=by_remote, extra=extra
            )
        )

    def _fail_soon(
        self, request: DialRequest, outcome: CallOutcome, status: int | None, cause: str
    ) -> None:
        """End a dial that never left, after ``dial`` has returned (the engine does
        not expect events from inside its own call)."""

        def fire() -> None:
            self._emit(
                Ended(request.call_id, self.scheduler.monotonic(), outcome, status, cause, False)
            )

        self.scheduler.call_at(self.scheduler.monotonic(), fire)

    # -- helpers ------------------------------------------------------------------------
    def _emit(self, event: CarrierEvent) -> None:
        if event.call_id in self._transfers:
            self._transfer_event(event)  # our own call to a transfer target
            return
        if self._listener is not None:
            self._listener.on_carrier_event(event)

    def _rearm(self, leg: _Leg, name: str, when: float, fn: Callable[[], None]) -> None:
        self._cancel_timer(leg, name)
        leg.timers[name] = self.scheduler.call_at(when, fn)

    @staticmethod
    def _cancel_timer(leg: _Leg, name: str) -> None:
        cancel_timer(leg.timers.pop(name, None))


def _media_of(sdp: bytes) -> MediaParams | None:
    try:
        media = remote_media(parse_sdp(sdp))
    except (SdpError, SdpNegotiationError, ValueError):
        return None
    if media.codec.payload_type not in (PT_PCMU, PT_PCMA) or media.port == 0:
        return None
    try:
        # a name here would make every RTP send a blocking DNS lookup
        ipaddress.ip_address(media.address)
    except ValueError:
        return None
    return media


def _connect_tone(hz: float, seconds: float) -> np.ndarray:
    """The agent's "a customer is on the line" beep, faded in and out (no clicks)."""
    n = int(8000 * seconds) if hz > 0 else 0
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    t = np.arange(n) / 8000.0
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / 40.0)
    return (0.25 * 32767 * np.sin(2 * np.pi * hz * t) * ramp).astype(np.int16)


def _uri_user(text: str) -> str:
    """A caller ID as a SIP URI user part (digits, '+', and unreserved characters)."""
    keep = "".join(c for c in text if c.isalnum() or c in "+-_.!~*'()")
    return keep or "dialer"


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int, name: str) -> Addr:
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise CarrierStartError(f"trunk {name}: cannot resolve {host!r}: {exc}") from None
    for family, *_, sockaddr in infos:
        if family == socket.AF_INET:
            return (str(sockaddr[0]), int(sockaddr[1]))
    family, *_, sockaddr = infos[0]
    return (str(sockaddr[0]), int(sockaddr[1]))


__all__ = ["CarrierStartError", "CarrierStats", "SipCarrier", "SipCarrierParams", "Trunk"]
