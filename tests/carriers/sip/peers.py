"""Independent SIP peers for interop tests: SIPp (as a UAS) and baresip.

Every peer binds free loopback ports picked at start, runs in its own process
group and is killed in teardown, so parallel test runs never collide.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from carriers.base import (
    Answered,
    CarrierEvent,
    DialRequest,
    Ended,
    MediaFrames,
    Ringing,
)
from carriers.rtp import g711
from carriers.sip.carrier import SipCarrier, SipCarrierParams, Trunk
from dialer.clock import RealClock
from sim.audio import peak_hz

SCENARIOS = Path(__file__).parent / "sipp"
LOOPBACK = "127.0.0.1"


def _udp_ports_in_use() -> set[int]:
    ports: set[int] = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def free_udp_port(even: bool = False) -> int:
    """A free port for a peer process to bind, below the kernel's ephemeral range
    (32768+), so that our own sockets bound to port 0 can never take it first."""
    in_use = _udp_ports_in_use()
    rng = np.random.default_rng()
    for _ in range(200):
        port = int(rng.integers(10_000, 30_000))
        if even:
            port -= port % 2
        if port in in_use or port + 1 in in_use:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP port")


def tone(freq: float, seconds: float, level: float = 8000.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(8000 * seconds)) / 8000.0
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@dataclass
class Sipp:
    """One SIPp UAS running ``scenario`` from ``workdir`` (where its audio lives)."""

    scenario: str
    workdir: Path
    calls: int = 1
    port: int = field(default_factory=free_udp_port)
    media_port: int = field(default_factory=lambda: free_udp_port(even=True))
    proc: subprocess.Popen[bytes] | None = None

    def start(self, sipp: str) -> Sipp:
        cmd = [
            sipp,
            "-sf",
            str(SCENARIOS / self.scenario),
            "-i",
            LOOPBACK,
            "-p",
            str(self.port),
            "-mi",
            LOOPBACK,
            "-mp",
            str(self.media_port),
            "-m",
            str(self.calls),
            "-nostdin",
            "-timeout",
            "40s",
            "-timeout_error",
            "-trace_err",
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for _ in range(200):  # until SIPp has bound its SIP port (or died)
            if self.port in _udp_ports_in_use() or self.proc.poll() is not None:
                break
            time.sleep(0.01)
        if self.proc.poll() is not None:
            raise RuntimeError(f"SIPp {self.scenario} exited at start:\n{self.errors()}")
        return self

    @property
    def addr(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    def trunk(self, name: str, **kw: object) -> Trunk:
        return Trunk(name, LOOPBACK, self.port, **kw)  # type: ignore[arg-type]

    async def finished(self, timeout: float = 10.0) -> int:
        """SIPp's exit status: 0 when every call followed the scenario."""
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, self.proc.wait), timeout)
        except TimeoutError:
            return -999

    def errors(self) -> str:
        logs = sorted(self.workdir.glob("*_errors.log"))
        text = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs)
        if self.proc is not None and self.proc.stderr is not None and self.proc.poll() is not None:
            text += self.proc.stderr.read().decode(errors="replace")[-1000:]
        return text

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


StartUas = Callable[..., Sipp]  # the ``uas`` fixture: uas("scenario.xml", calls=1)


class Collector:
    """A carrier listener that records events and can end calls on cue."""

    def __init__(self) -> None:
        self.events: list[CarrierEvent] = []
        self.ended: dict[str, Ended] = {}
        self._done: dict[str, asyncio.Event] = {}

    def on_carrier_event(self, event: CarrierEvent) -> None:
        self.events.append(event)
        if isinstance(event, Ended):
            self.ended[event.call_id] = event
            self.done(event.call_id).set()

    def done(self, call_id: str) -> asyncio.Event:
        return self._done.setdefault(call_id, asyncio.Event())

    async def wait(self, call_id: str, timeout: float = 15.0) -> Ended:
        await asyncio.wait_for(self.done(call_id).wait(), timeout)
        return self.ended[call_id]

    def of(self, call_id: str, kind: type[CarrierEvent]) -> list[CarrierEvent]:
        return [e for e in self.events if e.call_id == call_id and isinstance(e, kind)]

    def audio(self, call_id: str) -> npt.NDArray[np.int16]:
        frames = [e for e in self.events if e.call_id == call_id and isinstance(e, MediaFrames)]
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([f.samples for f in frames])

    def kinds(self, call_id: str) -> list[str]:
        names = []
        for e in self.events:
            if e.call_id == call_id and not isinstance(e, MediaFrames):
                names.append(type(e).__name__)
        return names


async def make_carrier(
    *trunks: Trunk,
    setup_timeout_s: float = 4.0,
    match_port: bool = False,
    options_interval_s: float = 0.0,
) -> tuple[SipCarrier, Collector, RealClock]:
    clock = RealClock()
    params = SipCarrierParams(
        trunks=trunks,
        bind_host=LOOPBACK,
        bind_port=0,
        rtp_port_min=0,
        rtp_port_max=0,
        setup_timeout_s=setup_timeout_s,
        match_port=match_port,
        options_interval_s=options_interval_s,
    )
    carrier = SipCarrier(clock, params, np.random.default_rng(7))
    listener = Collector()
    carrier.set_listener(listener)
    await carrier.start()
    return carrier, listener, clock


def write_ulaw(path: Path, samples: npt.NDArray[np.int16]) -> None:
    """Raw PCMU, what SIPp's rtp_stream action plays."""
    path.write_bytes(g711.encode(samples, g711.PT_PCMU))


def hang_up_after(
    carrier: SipCarrier, clock: RealClock, listener: Collector, seconds: float
) -> None:
    """Hang up every call ``seconds`` after it is answered."""
    original = listener.on_carrier_event

    def on_event(event: CarrierEvent) -> None:
        original(event)
        if isinstance(event, Answered):
            clock.call_later(seconds, lambda: carrier.hangup(event.call_id))

    listener.on_carrier_event = on_event  # type: ignore[method-assign]


__all__ = [
    "Answered",
    "Collector",
    "DialRequest",
    "Ended",
    "MediaFrames",
    "Ringing",
    "Sipp",
    "StartUas",
    "free_udp_port",
    "hang_up_after",
    "make_carrier",
    "peak_hz",
    "tone",
    "write_ulaw",
]
