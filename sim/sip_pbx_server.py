"""The asyncio shell around :class:`sim.sip_pbx.SipPbx`: one UDP socket for SIP,
one per answered call for RTP, one timer re-armed from ``get_timer()``.

Use from Python::

    server = SipPbxServer.from_scenario(load_scenario(path), port=0)
    host, port = await server.start()     # now answering INVITEs on udp:host:port
    ...
    await server.stop()                   # BYE to calls in progress, sockets closed

or ``async with SipPbxServer.from_scenario(...) as server:``.  ``server.pbx`` is the
core (``truth``, ``counts``, ``legs``); ``on_event`` receives every
:class:`~sim.sip_pbx.LegStarted` / :class:`~sim.sip_pbx.LegEnded`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from carriers.base import AudioClip
from carriers.sip.endpoint import Addr
from dialer.clock import Clock, RealClock, TimerHandle
from sim.audio import ClipBank, corpus_clips
from sim.population import Population
from sim.scenario import Scenario
from sim.sip_pbx import CloseMedia, LegEnded, LegStarted, OpenMedia, SipPbx, SipPbxParams

log = logging.getLogger(__name__)

EventCallback = Callable[[LegStarted | LegEnded], None]


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SipPbxServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.server._on_sip(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a caller that went away: nothing to do.
        log.debug("SIP socket error: %s", exc)


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SipPbxServer, call_id: str) -> None:
        self.server = server
        self.call_id = call_id

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.server._on_rtp(self.call_id, data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error on %s: %s", self.call_id, exc)


class SipPbxServer:
    """Runs a :class:`SipPbx` on real UDP sockets with the real clock."""

    def __init__(
        self,
        pbx: SipPbx,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        if host in ("0.0.0.0", "::", ""):
            # The address goes into Contact and SDP: a wildcard would read as "hold".
            raise ValueError(f"SipPbxServer host {host!r}: give the concrete address to use")
        self.pbx = pbx
        self.host = host
        self.port = port
        self.on_event = on_event
        self._clock = clock
        self._sip: asyncio.DatagramTransport | None = None
        self._rtp: dict[str, asyncio.DatagramTransport] = {}
        self._opening: dict[str, asyncio.Task[None]] = {}
        self._timer: TimerHandle | None = None
        self._timer_when = 0.0
        self.errors = 0  # exceptions caught so one bad input never stops the PBX
        self.lags: deque[float] = deque(maxlen=20_000)  # how late each timer ran (s)

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        *,
        seed: int | None = None,
        params: SipPbxParams | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clips: ClipBank | None = None,
        on_event: EventCallback | None = None,
    ) -> SipPbxServer:
        """The scenario's called parties with the same greetings ``dialer sim run``
        uses (the held-out corpus when ``audio = "corpus"`` and its tools are
        installed, else synthetic ones)."""
        root = np.random.default_rng(scenario.seed if seed is None else seed)
        r_clips, r_pbx = root.spawn(2)
        if clips is None:
            corpus: list[AudioClip] = []
            if scenario.audio == "corpus":
                corpus, note = corpus_clips(max(48, scenario.audio_clips * 4), seed=1)
                if note:
                    log.warning("%s", note)
            clips = ClipBank(r_clips, scenario.audio_clips, corpus)
        model = Population(scenario.called_party, clips)
        pbx = SipPbx(model, r_pbx, params or SipPbxParams(channels=scenario.channels), host)
        return cls(pbx, host, port, on_event=on_event)

    # --- life cycle ------------------------------------------------------------------
    @property
    def address(self) -> Addr:
        if self._sip is None:
            raise RuntimeError("SipPbxServer.start() has not been awaited")
        return self.host, self.port

    async def start(self) -> Addr:
        loop = asyncio.get_running_loop()
        if self._clock is None:
            self._clock = RealClock(loop)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=(self.host, self.port)
        )
        self._sip = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        self.pbx.set_address(self.host, self.port)
        self.pbx.start(self._clock.monotonic())
        log.info("simulated PBX listening on udp:%s:%d", self.host, self.port)
        return self.address

    async def stop(self) -> None:
        if self._sip is None:
            return
        self._guard(lambda: self.pbx.shutdown(self._now()))
        self._pump()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._opening.values():
            task.cancel()
        for rtp in self._rtp.values():
            rtp.close()
        self._rtp.clear()
        self._sip.close()
        self._sip = None

    async def __aenter__(self) -> SipPbxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- inputs ----------------------------------------------------------------------
    def _now(self) -> float:
        assert self._clock is not None
        return self._clock.monotonic()

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # the PBX outlives any one bad message or call
            self.errors += 1
            log.exception("simulated PBX: error handling input")

    def _on_sip(self, data: bytes, addr: Addr) -> None:
        self._guard(lambda: self.pbx.receive_sip(data, addr, self._now()))
        self._pump()

    def _on_rtp(self, call_id: str, data: bytes, addr: Addr) -> None:
        # receive_rtp never brings a deadline forward: no need to pump or re-arm.
        self._guard(lambda: self.pbx.receive_rtp(call_id, data, addr, self._now()))

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        self.lags.append(max(0.0, now - self._timer_when))
        self._guard(lambda: self.pbx.handle_timer(now))
        self._pump()

    def lag_p99(self) -> float:
        """99th percentile of timer lateness over the last timers (seconds): how far
        behind the 20 ms media clock the PBX is running."""
        return float(np.percentile(np.asarray(self.lags), 99)) if self.lags else 0.0

    # --- outputs ---------------------------------------------------------------------
    def _pump(self) -> None:
        pbx = self.pbx
        sip = self._sip
        for data, addr in pbx.sip_datagrams_to_send():
            if sip is not None:
                sip.sendto(data, addr)
        while (ev := pbx.next_event()) is not None:
            if isinstance(ev, OpenMedia):
                self._opening[ev.call_id] = asyncio.ensure_future(self._open_media(ev.call_id))
            elif isinstance(ev, CloseMedia):
                task = self._opening.pop(ev.call_id, None)
                if task is not None:
                    task.cancel()
                rtp = self._rtp.pop(ev.call_id, None)
                if rtp is not None:
                    rtp.close()
            elif self.on_event is not None:
                self._guard(partial(self.on_event, ev))
        for call_id, data, addr in pbx.rtp_datagrams_to_send():
            rtp = self._rtp.get(call_id)
            if rtp is not None:
                rtp.sendto(data, addr)
        self._arm()

    def _arm(self) -> None:
        if self._sip is None or self._clock is None:
            return
        when = self.pbx.get_timer()
        if when is None:
            return
        # Keep an earlier-or-equal timer: firing early is harmless, late is not.
        if self._timer is not None and self._timer_when <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._clock.call_at(when, self._on_timer)

    async def _open_media(self, call_id: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _RtpProtocol(self, call_id), local_addr=(self.host, 0)
            )
        except OSError as exc:
            log.warning("no RTP socket for %s: %s", call_id, exc)
            self._opening.pop(call_id, None)
            self._guard(lambda: self.pbx.media_failed(call_id, self._now()))
            self._pump()
            return
        if self._opening.pop(call_id, None) is None or self._sip is None:
            transport.close()  # the call ended while the socket was being bound
            return
        self._rtp[call_id] = transport
        port = int(transport.get_extra_info("sockname")[1])
        self._guard(lambda: self.pbx.media_opened(call_id, port, self._now()))
        self._pump()


__all__ = ["EventCallback", "SipPbxServer"]
