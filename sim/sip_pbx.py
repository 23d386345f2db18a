"""A SIP-speaking simulated PBX: the sans-IO core.

The far ends are the same called-party model the in-process
:class:`carriers.simulated.SimulatedPbx` draws from (``sim.population``): each
INVITE samples a :class:`PartyBehaviour` and the PBX plays it out in SIP and RTP:

* bad number: 100, then 404 after ``bad_number_s``; busy: 486 after ``busy_tone_s``;
* no answer: 180 after ``post_dial_delay_s``, then rings until the caller's CANCEL
  (487), or 480 after ``max_ring_s`` so a forgotten call does not ring forever;
* person / machine / fax: 180, then 200 with an SDP answer (PCMU or PCMA, whichever
  the offer lists first, telephone-event kept) after the sampled ring time, and the
  party's greeting streamed as RTP at 20 ms pacing, then line noise until the end;
* a person who hears nothing (no RTP louder than ``heard_rms``) for ``patience_s``
  hangs up, as in the in-process PBX where only a bridge keeps them; once spoken
  to they talk for ``talk_s`` and hang up (BYE).  A machine hangs up ``machine_s``
  after answering.  Our BYE ends the call at any time;
* ``unavailable_rate`` of INVITEs (and any beyond ``channels``) get 503 at once,
  to exercise trunk failover;
* a person whose scenario has an IVR model (agentless campaigns) presses their key
  ``ivr_key_s`` after first hearing audio, as RFC 4733 telephone-events when the
  offer had them;
* with ``early_media`` the 180 becomes a 183 carrying the SDP answer, with ringback
  tone streamed until the 200 (same SDP), and a bad number plays the SIT tone in
  early media before its 404.

Feed it ``receive_sip(data, addr, now)``, ``receive_rtp(call_id, data, addr, now)``
and ``handle_timer(now)`` at ``get_timer()``; send ``sip_datagrams_to_send()`` from
the SIP socket and ``rtp_datagrams_to_send()`` from each call's RTP socket.  Events
(``next_event()``) ask the driver to open an RTP socket for a call
(:class:`OpenMedia`, answered with ``media_opened``) or close it
(:class:`CloseMedia`) and report each call (:class:`LegStarted`, :class:`LegEnded`).
``sim.sip_pbx_server`` is the asyncio driver.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from carriers.base import SAMPLE_RATE
from carriers.rtp import g711
from carriers.rtp.dtmf import DtmfParseError, DtmfReceiver
from carriers.rtp.packet import RtpPacket, RtpParseError
from carriers.rtp.session import MediaSession
from carriers.simulated import CalledPartyModel, PartyBehaviour, PartyKind
from carriers.sip.endpoint import (
    Addr,
    Call,
    CallEnded,
    Endpoint,
    EndpointConfig,
    IncomingCall,
    IncomingRequest,
)
from carriers.sip.sdp import (
    PCMA,
    PCMU,
    Codec,
    SdpError,
    SdpNegotiationError,
    SessionDescription,
    build_answer,
    parse_sdp,
    remote_media,
)
from carriers.sip.sdp import MediaParams as SdpMedia
from carriers.sip.transaction import TimerParams
from carriers.sip.uri import SipUri
from sim.audio import peak_hz, sine

PTIME = 0.02  # one G.711 packet of 160 samples
_MAX_CATCH_UP = 0.2  # further behind than this, skip media ticks instead of bursting
_TRUTH_KEEP = 100_000  # calls whose ground truth is remembered (a long-running PBX)


@dataclass(frozen=True, slots=True)
class SipPbxParams:
    """How the PBX behaves apart from the called parties themselves."""

    channels: int = 1000  # calls in progress beyond this get 503
    post_dial_delay_s: float = 0.4  # INVITE to 180
    busy_tone_s: float = 2.0  # INVITE to 486
    bad_number_s: float = 1.5  # INVITE to 404
    unavailable_rate: float = 0.0  # share of INVITEs answered 503 (failover tests)
    max_ring_s: float = 180.0  # an unanswered call ends with 480 after this
    patience_needs_audio: bool = True  # False: a person talks for talk_s regardless
    heard_rms: float = 300.0  # RTP louder than this (int16 RMS) means "spoken to"
    noise_rms: float = 60.0  # line noise sent after the greeting
    # a person, once spoken to, answers with this tone (looped, in place of line
    # noise), so a test can find the customer's audio at the agent; 0: noise
    reply_tone_hz: float = 0.0
    codecs: tuple[Codec, ...] = (PCMU, PCMA)  # in our order of preference
    # 183 with SDP instead of 180: ringback tone while ringing, and for a bad number
    # the SIT tone before the 404, as many networks send
    early_media: bool = False
    user_agent: str = "dialer-sim-pbx"
    timers: TimerParams = field(default_factory=TimerParams)

    def __post_init__(self) -> None:
        checks = [
            ("channels", self.channels >= 1, "must be at least 1"),
            ("unavailable_rate", 0.0 <= self.unavailable_rate <= 1.0, "must be in [0, 1]"),
            ("max_ring_s", self.max_ring_s > 0, "must be positive"),
            ("codecs", bool(self.codecs), "must name PCMU and/or PCMA"),
        ]
        for name in ("post_dial_delay_s", "busy_tone_s", "bad_number_s", "heard_rms"):
            checks.append((name, getattr(self, name) >= 0, "must not be negative"))
        for key, ok, problem in checks:
            if not ok:
                raise ValueError(f"SipPbxParams.{key}: {problem}")


class Phase(StrEnum):
    TRYING = "trying"  # 100 sent, nothing else yet
    RINGING = "ringing"  # 180 sent
    ANSWERED = "answered"
    DONE = "done"


# --- events for the driver --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenMedia:
    """Bind an RTP socket for this call and report its port with ``media_opened``."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CloseMedia:
    call_id: str


@dataclass(frozen=True, slots=True)
class LegStarted:
    call_id: str
    number: str
    kind: PartyKind
    at: float


@dataclass(frozen=True, slots=True)
class LegEnded:
    """One INVITE's whole story.  ``status`` is our final response (200 when
    answered); ``hung_up_by`` is "pbx", "caller" or "" when never answered."""

    call_id: str
    number: str
    kind: PartyKind | None  # None: refused before a party was drawn (503, 488)
    status: int
    at: float
    answered_at: float | None = None
    hung_up_by: str = ""
    cause: str = ""
    rtp_sent: int = 0
    rtp_received: int = 0
    heard_at: float | None = None
    pressed: str = ""  # the DTMF key the person sent (RFC 4733), if any
    heard_hz: float = 0.0  # the strongest frequency in the first loud packet heard
    digits_heard: str = ""  # RFC 4733 keys the caller sent (an agent's, through a bridge)


PbxEvent = OpenMedia | CloseMedia | LegStarted | LegEnded


class _Do(StrEnum):
    RING = "ring"
    ANSWER = "answer"
    BAD_NUMBER = "bad_number"
    BUSY = "busy"
    GIVE_UP = "give_up"
    HANG_UP = "hang_up"


@dataclass(eq=False, slots=True)
class PbxLeg:
    call: Call
    number: str
    behaviour: PartyBehaviour
    offer: SessionDescription
    started: float
    phase: Phase = Phase.TRYING
    action: _Do | None = None
    token: int = 0  # bumped on every (re)schedule; stale heap entries carry an old one
    media_wanted: bool = False
    local_port: int | None = None
    answer_due: bool = False  # the answer time came before the RTP socket was ready
    remote: SdpMedia | None = None
    remote_sdp: bytes | None = None  # what ``remote`` was read from (re-INVITEs change it)
    answer_sdp: bytes = b""  # ours, the same in 183 and 200 (RFC 3264)
    filler: npt.NDArray[np.int16] | None = None  # looped when nothing else is queued
    media: MediaSession | None = None
    answered_at: float | None = None
    heard_at: float | None = None
    press_at: float | None = None  # agentless campaigns: when the person presses a key
    pressed: str = ""
    heard_hz: float = 0.0
    digits: DtmfReceiver = field(default_factory=DtmfReceiver)
    digits_heard: str = ""
    rtp_received: int = 0
    status: int = 0

    @property
    def call_id(self) -> str:
        return self.call.call_id


class SipPbx:
    """The simulated PBX core; no sockets, no clock.  ``host``/``port`` are the
    address peers see (Contact, SDP); ``set_address`` fixes them after binding."""

    def __init__(
        self,
        model: CalledPartyModel,
        rng: np.random.Generator,
        params: SipPbxParams | None = None,
        host: str = "127.0.0.1",
        port: int = 5060,
    ) -> None:
        self.model = model
        self.rng = rng
        self.params = params or SipPbxParams()
        self.host = _require_ip(host)
        self.endpoint = Endpoint(self._endpoint_config(host, port))
        self.legs: dict[str, PbxLeg] = {}
        # Ground truth per SIP Call-ID, for tests and for scoring AMD; never sent.
        self.truth: dict[str, PartyBehaviour] = {}
        self.counts: Counter[str] = Counter()  # final outcomes, for summaries
        self.epoch: float | None = None  # the model sees time since the PBX started
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._events: deque[PbxEvent] = deque()
        self._rtp_out: list[tuple[str, bytes, Addr]] = []
        self._tick_at: float | None = None
        self._now = 0.0
        noise = self.rng.normal(0.0, self.params.noise_rms, SAMPLE_RATE)
        self._noise = np.clip(np.round(noise), -32768, 32767).astype(np.int16)
        self._ringback = _ringback(self._noise)
        self._sit = _sit_tone()
        hz = self.params.reply_tone_hz
        self._reply_tone = sine(hz, 1.0, 6000.0) if hz > 0 else None

    def _endpoint_config(self, host: str, port: int) -> EndpointConfig:
        p = self.params
        return EndpointConfig(
            host=host, port=port, user="pbx", user_agent=p.user_agent, timers=p.timers
        )

    def set_address(self, host: str, port: int) -> None:
        _require_ip(host)
        self.host = host
        self.endpoint.config = self._endpoint_config(host, port)

    def start(self, now: float) -> None:
        self.epoch = now

    # --- outputs ---------------------------------------------------------------------
    def sip_datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        return self.endpoint.datagrams_to_send()

    def rtp_datagrams_to_send(self) -> list[tuple[str, bytes, Addr]]:
        """(call_id, datagram, destination): send from that call's RTP socket."""
        out, self._rtp_out = self._rtp_out, []
        return out

    def next_event(self) -> PbxEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        times = [self.endpoint.get_timer(), self._tick_at, heap[0][0] if heap else None]
        return min((t for t in times if t is not None), default=None)

    def _live(self, entry: tuple[float, int, str, int]) -> bool:
        leg = self.legs.get(entry[2])
        return leg is not None and leg.token == entry[3]

    # --- inputs ----------------------------------------------------------------------
    def receive_sip(self, data: bytes, addr: Addr, now: float) -> None:
        self._now = max(self._now, now)
        if self.epoch is None:
            self.epoch = now
        self.endpoint.receive_datagram(data, addr, now)
        self._drain_endpoint(now)

    def receive_rtp(self, call_id: str, data: bytes, addr: Addr, now: float) -> None:
        """Audio from the caller.  Never makes a deadline earlier, so a driver need
        not re-arm its timer after it."""
        leg = self.legs.get(call_id)
        if leg is None or leg.phase is not Phase.ANSWERED:
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            return
        leg.rtp_received += 1
        media = leg.media
        if media is not None and packet.payload_type == media.telephone_event_pt:
            try:
                events = leg.digits.receive(packet)
            except DtmfParseError:
                return
            leg.digits_heard += "".join(e.digit for e in events)
            return
        if leg.heard_at is not None or packet.payload_type not in (g711.PT_PCMU, g711.PT_PCMA):
            return
        samples = g711.decode(packet.payload, packet.payload_type).astype(np.float64)
        if len(samples) and float(np.sqrt(np.mean(samples * samples))) >= self.params.heard_rms:
            leg.heard_at = now
            leg.heard_hz = peak_hz(samples)
            b = leg.behaviour
            if b.kind is PartyKind.PERSON and self._reply_tone is not None and media is not None:
                media.stop_playing()  # they answer at once, over what was queued
                leg.filler = self._reply_tone
            if b.kind is PartyKind.PERSON and self.params.patience_needs_audio:
                self._schedule(leg, now + b.talk_s, _Do.HANG_UP)
            if b.kind is PartyKind.PERSON and b.ivr_key:
                # what they hear is the message with its menu: they press their key
                leg.press_at = now + b.ivr_key_s

    def media_opened(self, call_id: str, port: int, now: float) -> None:
        leg = self.legs.get(call_id)
        if leg is None or leg.phase is Phase.DONE:
            return
        leg.local_port = port
        if leg.answer_due:
            self._answer(leg, now)

    def media_failed(self, call_id: str, now: float) -> None:
        """The driver could not bind an RTP socket: refuse the call (503)."""
        leg = self.legs.get(call_id)
        if leg is not None and leg.phase in (Phase.TRYING, Phase.RINGING):
            self._reject(leg, 503, now, "no RTP port")

    def handle_timer(self, now: float) -> None:
        self._now = max(self._now, now)
        self.endpoint.handle_timer(now)
        self._drain_endpoint(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, call_id, token = heapq.heappop(heap)
            leg = self.legs.get(call_id)
            if leg is not None and leg.token == token and leg.action is not None:
                action, leg.action = leg.action, None
                self._run(leg, action, now)
                self._drain_endpoint(now)
        if self._tick_at is not None and self._tick_at <= now:
            if now - self._tick_at > _MAX_CATCH_UP:
                self._tick_at = now
            while self._tick_at <= now:
                self._media_tick(self._tick_at)
                self._tick_at += PTIME
            if not any(leg.media is not None for leg in self.legs.values()):
                self._tick_at = None

    def shutdown(self, now: float) -> None:
        """Hang up answered calls (BYE) and refuse unanswered ones (503)."""
        for leg in list(self.legs.values()):
            if leg.phase is Phase.ANSWERED:
                self._hang_up(leg, now, "pbx shutting down")
            elif leg.phase is not Phase.DONE:
                self._reject(leg, 503, now, "pbx shutting down")
        self._drain_endpoint(now)

    # --- SIP events --------------------------------------------------------------------
    def _drain_endpoint(self, now: float) -> None:
        ep = self.endpoint
        while (ev := ep.next_event()) is not None:
            if isinstance(ev, IncomingCall):
                self._on_invite(ev, now)
            elif isinstance(ev, CallEnded):
                self._on_ended(ev, now)
            elif isinstance(ev, IncomingRequest):
                # INFO and the like inside a call are acknowledged; anything else
                # outside a call is not something a PBX trunk port accepts.
                ep.respond(ev.request, 200 if ev.request.to.tag else 405, now)

    def _on_invite(self, ev: IncomingCall, now: float) -> None:
        call, p = ev.call, self.params
        uri = ev.request.uri
        number = (uri.user_unescaped or "") if isinstance(uri, SipUri) else ""
        busy_lines = sum(1 for leg in self.legs.values() if leg.phase is not Phase.DONE)
        if busy_lines >= p.channels or self.rng.random() < p.unavailable_rate:
            self._refuse(call, number, 503, now, "unavailable")
            return
        try:
            offer = parse_sdp(ev.sdp or b"")
            _, media = build_answer(offer, self.host, 9, 0, codecs=p.codecs)  # answerable?
            self._check_address(media.address)
        except SdpNegotiationError as exc:
            self._refuse(call, number, 488, now, str(exc))
            return
        except SdpError as exc:
            # No offer (late offer is not supported) or a malformed one.
            self._refuse(call, number, 488 if not ev.sdp else 400, now, str(exc))
            return
        b = self.model.sample(number, now - (self.epoch or 0.0), self.rng)
        self.truth[call.call_id] = b
        if len(self.truth) > _TRUTH_KEEP:
            del self.truth[next(iter(self.truth))]
        leg = PbxLeg(call, number, b, offer, now)
        self.legs[call.call_id] = leg
        self._events.append(LegStarted(call.call_id, number, b.kind, now))
        if b.kind is PartyKind.BAD_NUMBER and p.early_media:
            self._want_media(leg)
            self._schedule(leg, now + p.post_dial_delay_s, _Do.RING)
        elif b.kind is PartyKind.BAD_NUMBER:
            self._schedule(leg, now + p.bad_number_s, _Do.BAD_NUMBER)
        elif b.kind is PartyKind.BUSY:
            self._schedule(leg, now + p.busy_tone_s, _Do.BUSY)
        else:
            if b.kind is not PartyKind.NO_ANSWER or p.early_media:
                self._want_media(leg)
            self._schedule(leg, now + p.post_dial_delay_s, _Do.RING)

    def _check_address(self, address: str) -> None:
        """RTP goes to an IP literal of our own family: a host name would need a
        blocking lookup, an IPv6 peer cannot be reached from an IPv4 socket."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise SdpNegotiationError(f"c= address {address[:60]!r} is not an IP address") from None
        if ip.version != self._ip_version:
            raise SdpNegotiationError(f"c= address {address} is not IPv{self._ip_version}")

    @property
    def _ip_version(self) -> int:
        return ipaddress.ip_address(self.host).version

    def _want_media(self, leg: PbxLeg) -> None:
        leg.media_wanted = True
        self._events.append(OpenMedia(leg.call_id))

    def _on_ended(self, ev: CallEnded, now: float) -> None:
        leg = self.legs.get(ev.call.call_id)
        if leg is None or leg.phase is Phase.DONE:
            return
        if not ev.by_remote:
            return  # our own BYE: already accounted for in _hang_up
        if leg.phase is Phase.ANSWERED:
            self._finish(leg, now, 200, "caller", "caller hung up")
        else:
            self._finish(leg, now, 487, "", "cancelled by caller")

    # --- actions ---------------------------------------------------------------------
    def _schedule(self, leg: PbxLeg, when: float, action: _Do) -> None:
        leg.token += 1
        leg.action = action
        heapq.heappush(self._heap, (when, next(self._seq), leg.call_id, leg.token))

    def _run(self, leg: PbxLeg, action: _Do, now: float) -> None:
        p, b = self.params, leg.behaviour
        if action is _Do.BAD_NUMBER:
            self._reject(leg, 404, now, "bad number")
        elif action is _Do.BUSY:
            self._reject(leg, 486, now, "busy")
        elif action is _Do.GIVE_UP:
            self._reject(leg, 480, now, f"no answer in {p.max_ring_s:g} s")
        elif action is _Do.RING:
            leg.phase = Phase.RINGING
            if p.early_media and leg.local_port is not None:
                media = self._start_media(leg, now)
                self.endpoint.ring(leg.call, now, 183, leg.answer_sdp)
                if b.kind is PartyKind.BAD_NUMBER:
                    media.play(self._sit)  # then line noise until the 404
                else:
                    leg.filler = self._ringback
            else:
                self.endpoint.ring(leg.call, now, 180)
            if b.kind is PartyKind.BAD_NUMBER:
                sit_end = now + len(self._sit) / SAMPLE_RATE + 0.2
                self._schedule(leg, max(leg.started + p.bad_number_s, sit_end), _Do.BAD_NUMBER)
            elif b.kind is PartyKind.NO_ANSWER:
                self._schedule(leg, now + p.max_ring_s, _Do.GIVE_UP)
            else:
                answer_at = max(now, leg.started + b.ring_s)
                self._schedule(leg, answer_at, _Do.ANSWER)
        elif action is _Do.ANSWER:
            if leg.local_port is None:
                leg.answer_due = True  # answered as soon as the socket is bound
            else:
                self._answer(leg, now)
        elif action is _Do.HANG_UP:
            self._hang_up(leg, now, "far end hung up")

    def _start_media(self, leg: PbxLeg, now: float) -> MediaSession:
        """Our SDP answer and the RTP sender (at the 183, or else at the 200)."""
        assert leg.local_port is not None
        session_id = int(self.rng.integers(1, 2**31))
        answer, remote = build_answer(
            leg.offer, self.host, leg.local_port, session_id,
            codecs=self.params.codecs, username="simpbx",
        )  # fmt: skip
        leg.answer_sdp, leg.remote = answer.serialise(), remote
        leg.remote_sdp = leg.call.remote_sdp
        event_pt = remote.telephone_event_pt
        leg.media = MediaSession(
            remote.codec.payload_type,
            event_pt if event_pt is not None and 96 <= event_pt <= 127 else None,
            rng=self.rng,
        )
        if self._tick_at is None:
            self._tick_at = now
        return leg.media

    def _answer(self, leg: PbxLeg, now: float) -> None:
        if leg.phase is not Phase.RINGING or leg.local_port is None:
            return
        p, b = self.params, leg.behaviour
        media = leg.media or self._start_media(leg, now)
        media.stop_playing()  # the ringback, when there was early media
        leg.filler = None
        self.endpoint.answer(leg.call, leg.answer_sdp, now)
        leg.phase, leg.answered_at = Phase.ANSWERED, now
        if b.clip is not None:
            media.play(b.clip.samples)
        if b.kind is PartyKind.PERSON:
            limit = b.patience_s if p.patience_needs_audio else b.talk_s
        else:
            limit = b.machine_s
        self._schedule(leg, now + limit, _Do.HANG_UP)

    def _media_tick(self, tick: float) -> None:
        for leg in self.legs.values():
            media = leg.media
            if media is None:
                continue
            if leg.call.remote_sdp is not leg.remote_sdp:
                self._follow_reinvite(leg)
            if leg.press_at is not None and tick >= leg.press_at:
                leg.press_at = None
                key = leg.behaviour.ivr_key or ""
                if media.telephone_event_pt is not None and key:
                    try:
                        media.send_dtmf(key)
                        leg.pressed = key
                    except ValueError:
                        pass  # not a DTMF key: the person presses nothing
            if media.queued_frames < 3:
                # a live line is never digitally silent
                media.play(self._noise if leg.filler is None else leg.filler)
            media.handle_timer(tick)
            datagrams = media.datagrams_to_send()
            remote = leg.remote
            if remote is None or remote.on_hold:
                continue
            dest = (remote.address, remote.port)
            self._rtp_out += [(leg.call_id, d, dest) for d in datagrams]

    def _follow_reinvite(self, leg: PbxLeg) -> None:
        """The caller re-INVITEd (the endpoint answered it with our unchanged SDP):
        send to its new address, or hold while it says sendonly/inactive."""
        leg.remote_sdp = leg.call.remote_sdp
        try:
            remote = remote_media(parse_sdp(leg.remote_sdp or b""))
            self._check_address(remote.address)
        except (SdpError, SdpNegotiationError):
            return  # keep streaming where we were
        if leg.remote is not None:
            # The codec stays the one our (unchanged) answer agreed on.
            leg.remote = replace(
                leg.remote, address=remote.address, port=remote.port, direction=remote.direction
            )

    def _hang_up(self, leg: PbxLeg, now: float, cause: str) -> None:
        self.endpoint.bye(leg.call, now)
        self._finish(leg, now, 200, "pbx", cause)

    def _reject(self, leg: PbxLeg, status: int, now: float, cause: str) -> None:
        self.endpoint.reject(leg.call, status, now)
        self._finish(leg, now, status, "", cause)

    def _refuse(self, call: Call, number: str, status: int, now: float, cause: str) -> None:
        self.endpoint.reject(call, status, now)
        self.counts[str(status)] += 1
        self._events.append(LegEnded(call.call_id, number, None, status, now, cause=cause))

    def _finish(self, leg: PbxLeg, now: float, status: int, by: str, cause: str) -> None:
        leg.phase, leg.status, leg.action = Phase.DONE, status, None
        leg.token += 1
        del self.legs[leg.call_id]
        sent = leg.media.sent_packets if leg.media is not None else 0
        leg.media = None
        if leg.media_wanted:
            self._events.append(CloseMedia(leg.call_id))
        key = f"{leg.behaviour.kind}" if status == 200 else f"{status}"
        self.counts[key] += 1
        ended = LegEnded(
            leg.call_id, leg.number, leg.behaviour.kind, status, now, leg.answered_at,
            by, cause, sent, leg.rtp_received, leg.heard_at, leg.pressed, leg.heard_hz,
            leg.digits_heard,
        )  # fmt: skip
        self._events.append(ended)


def _require_ip(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"PBX address {host!r} must be an IP address (it goes into SDP)") from None
    return host


def _tone(freqs: tuple[float, ...], seconds: float, level: float) -> npt.NDArray[np.float64]:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return level * sum((np.sin(2 * np.pi * f * t) for f in freqs), np.zeros(len(t)))


def _ringback(noise: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """One North American ringback cycle: 440 + 480 Hz for 2 s, 4 s of line noise."""
    on = _tone((440.0, 480.0), 2.0, 2500.0).astype(np.int16)
    return np.concatenate([on, *([noise] * 4)])


def _sit_tone() -> npt.NDArray[np.int16]:
    """Special information tone for "number not in service" (ITU-T E.180 / Telcordia):
    913.8, 1370.6 and 1776.7 Hz for 274, 274 and 380 ms."""
    parts = [_tone((913.8,), 0.274, 6000.0), _tone((1370.6,), 0.274, 6000.0)]
    parts.append(_tone((1776.7,), 0.380, 6000.0))
    return np.concatenate(parts).astype(np.int16)


__all__ = [
    "CloseMedia",
    "LegEnded",
    "LegStarted",
    "OpenMedia",
    "PbxEvent",
    "PbxLeg",
    "Phase",
    "SipPbx",
    "SipPbxParams",
]
