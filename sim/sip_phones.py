"""Agents' phones over real SIP and RTP on loopback, for tests, benches and the
SIP demo.

Each phone has its own UDP socket and sans-IO :class:`Endpoint`, as a softphone
on an agent's desk would: given a password it registers with the engine (digest
authentication), it answers the engine's login call at once (the nailed-up leg),
and while that leg is up it sends a tone, so the customer hears "an agent", and
listens, keeping what it hears so a test can check that the customer's audio
arrived.  ``SipPhone.uri`` is where an unregistered phone is reached.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from carriers.rtp.jitter import Frame
from carriers.rtp.session import MediaSession
from carriers.rtp.udp import RtpPortPool, RtpStream
from carriers.sip.endpoint import Call as SipCall
from carriers.sip.endpoint import (
    CallEnded,
    Endpoint,
    EndpointConfig,
    IncomingCall,
    Registered,
    Registration,
    RegistrationFailed,
)
from carriers.sip.sdp import SdpError, SdpNegotiationError, build_answer, parse_sdp
from carriers.sip.transport import SipTransport
from carriers.udp import Addr
from dialer.clock import Clock
from sim.audio import peak_hz, sine

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Burst:
    """A stretch of audio the phone heard after a silence: a bridged customer."""

    at: float  # arrival of its first frame
    frames: int = 0
    peaks: list[float] = field(default_factory=list)  # strongest frequency per 100 ms

    @property
    def peak_hz(self) -> float:
        """The strongest frequency of its first 100 ms."""
        return self.peaks[0] if self.peaks else 0.0


class SipPhone:
    """One agent's softphone (see the module docstring)."""

    def __init__(
        self,
        clock: Clock,
        user: str,
        engine: Addr,
        *,
        password: str | None = None,
        tone_hz: float = 700.0,
        host: str = "127.0.0.1",
        loud_rms: float = 300.0,
    ) -> None:
        self.clock = clock
        self.user = user
        self.engine = engine
        self.password = password
        self.host = host
        self.loud_rms = loud_rms
        self._tone = sine(tone_hz, 1.0, 0.2 * 32767)
        self._transport: SipTransport | None = None
        self._pool: RtpPortPool | None = None
        self.endpoint: Endpoint | None = None
        self.stream: RtpStream | None = None
        self.call: SipCall | None = None
        self.registration: Registration | None = None
        self.registered = asyncio.Event()
        self.register_failure: str | None = None
        self.answered = 0
        self.hung_up_by_engine = 0
        self.bursts: deque[Burst] = deque(maxlen=10_000)
        self._burst: Burst | None = None
        self._burst_audio: list[npt.NDArray[np.int16]] = []
        self._quiet = 0  # frames since the last loud one
        self.frames_heard = 0
        self.digits: list[str] = []

    @property
    def addr(self) -> Addr:
        assert self._transport is not None, "start() first"
        return self._transport.local_addr

    @property
    def uri(self) -> str:
        host, port = self.addr
        return f"sip:{self.user}@{host}:{port}"

    @property
    def up(self) -> bool:
        return self.call is not None

    async def start(self, register: bool | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._transport = SipTransport(self.clock, self._on_input)
        host, port = self._transport.bind(loop, self.host, 0)
        self._pool = RtpPortPool(self.host)
        self.endpoint = Endpoint(
            EndpointConfig(
                host=host,
                port=port,
                user=self.user,
                username=self.user if self.password else None,
                password=self.password,
                user_agent="dialer-sim-phone",
            )
        )
        self._transport.add_peer(self.engine, self.endpoint)
        if register if register is not None else self.password is not None:
            ehost, eport = self.engine
            now = self.clock.monotonic()
            self.registration = self.endpoint.register(f"sip:{ehost}:{eport}", self.engine, now)
            self._on_input(self.endpoint)
            self._transport.flush(self.endpoint)

    async def stop(self, unregister: bool = True) -> None:
        """Hang up and unregister (``unregister=False`` when the engine is gone)."""
        ep, tr = self.endpoint, self._transport
        if ep is not None and tr is not None:
            now = self.clock.monotonic()
            if self.call is not None:
                ep.bye(self.call, now)
            if unregister and self.registration is not None and self.registered.is_set():
                # unregister, and wait for the answer (a 401 is answered first)
                self.registered.clear()
                ep.refresh(self.registration, now, expires=0)
                self._on_input(ep)
                tr.flush(ep)
                try:
                    await asyncio.wait_for(self.registered.wait(), 2.0)
                except TimeoutError:
                    log.warning("phone %s: no answer to the un-REGISTER", self.user)
            self._on_input(ep)
            tr.flush(ep)
        self._close_media()
        if tr is not None:
            tr.close()

    def hang_up(self) -> None:
        """The agent puts the phone down (ends the nailed-up leg)."""
        ep, tr = self.endpoint, self._transport
        if ep is None or tr is None or self.call is None:
            return
        ep.bye(self.call, self.clock.monotonic())
        self._on_input(ep)
        tr.flush(ep)

    def crash(self) -> None:
        """The softphone dies: media and signalling stop, and no BYE is sent."""
        self._close_media()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.call = None

    def send_digit(self, digit: str) -> None:
        if self.stream is not None:
            self.stream.forward_digit(digit, 0.1)

    # -- SIP ------------------------------------------------------------------------------
    def _on_input(self, ep: Endpoint) -> None:
        while (ev := ep.next_event()) is not None:
            now = self.clock.monotonic()
            if isinstance(ev, IncomingCall):
                self._answer(ep, ev, now)
            elif isinstance(ev, CallEnded) and ev.call is self.call:
                self.call = None
                self.hung_up_by_engine += ev.by_remote
                self._close_media()
            elif isinstance(ev, Registered):
                self.registered.set()
            elif isinstance(ev, RegistrationFailed):
                self.register_failure = f"{ev.status} {ev.reason}"
                log.warning("phone %s: registration failed: %s", self.user, self.register_failure)

    def _answer(self, ep: Endpoint, ev: IncomingCall, now: float) -> None:
        if self.call is not None or ev.sdp is None or self._pool is None:
            ep.reject(ev.call, 486, now)  # one line per agent
            return
        stream = RtpStream(self.clock, self._pool, asyncio.get_running_loop(), self._frames)
        try:
            answer, remote = build_answer(parse_sdp(ev.sdp), self.host, stream.local_addr[1], 1)
        except (SdpError, SdpNegotiationError) as exc:
            log.warning("phone %s: cannot answer: %s", self.user, exc)
            stream.close()
            ep.reject(ev.call, 488, now)
            return
        stream.on_digits = lambda digits, at: self.digits.extend(d.digit for d in digits)
        te = remote.telephone_event_pt
        session = MediaSession(remote.codec.payload_type, te if te and 96 <= te <= 127 else None)
        stream.start(session, (remote.address, remote.port))
        self.stream, self.call = stream, ev.call
        ep.answer(ev.call, answer.serialise(), now)
        self.answered += 1
        self._speak()

    def _speak(self) -> None:
        if self.stream is not None and not self.stream.closed:
            self.stream.play_samples(self._tone, self._speak)

    def _close_media(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    # -- what the phone hears -------------------------------------------------------------
    def _frames(self, frames: list[Frame], now: float) -> None:
        for f in frames:
            self.frames_heard += 1
            x = f.samples.astype(np.float64)
            loud = float(np.sqrt(np.mean(x * x))) >= self.loud_rms
            if loud and self._burst is None:
                self._burst = Burst(now)
                self._burst_audio = []
                self.bursts.append(self._burst)
            if self._burst is None:
                continue
            self._quiet = 0 if loud else self._quiet + 1
            if self._quiet >= 10:  # 200 ms of quiet ends a burst
                self._burst = None
                continue
            self._burst.frames += 1
            self._burst_audio.append(f.samples)
            if len(self._burst_audio) == 5:
                if len(self._burst.peaks) < 3000:  # five minutes of windows per burst
                    self._burst.peaks.append(peak_hz(np.concatenate(self._burst_audio)))
                self._burst_audio = []

    def heard_tone(self, hz: float, tolerance_hz: float = 25.0) -> bool:
        """Whether some 100 ms the phone heard had ``hz`` as its strongest frequency."""
        return any(abs(p - hz) <= tolerance_hz for b in self.bursts for p in b.peaks)


async def start_phones(
    clock: Clock,
    engine: Addr,
    users: list[str],
    *,
    passwords: dict[str, str] | None = None,
    tone_hz: float = 700.0,
) -> list[SipPhone]:
    """Start one phone per user; those with a password register (and are waited for)."""
    phones = [
        SipPhone(clock, u, engine, password=(passwords or {}).get(u), tone_hz=tone_hz)
        for u in users
    ]
    for p in phones:
        await p.start()
    waits = [p.registered.wait() for p in phones if p.registration is not None]
    if waits:
        await asyncio.wait_for(asyncio.gather(*waits), 10.0)
    return phones
