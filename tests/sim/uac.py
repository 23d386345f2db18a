"""Test helpers: the project's sans-IO Endpoint as a caller on a real loopback
socket, an RTP sink that records what arrives, and the PBX under test."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from carriers.rtp import g711
from carriers.rtp.packet import RtpPacket
from carriers.sip.endpoint import Endpoint, EndpointConfig, EndpointEvent
from carriers.sip.sdp import PCMA, PCMU, Codec, build_offer
from carriers.sip.transaction import TimerParams
from sim.scenario import Scenario, parse_scenario
from sim.sip_pbx import LegEnded, LegStarted, SipPbxParams
from sim.sip_pbx_server import SipPbxServer

E = TypeVar("E")
# Short PBX delays so a call flow takes a fraction of a second.
FAST = SipPbxParams(post_dial_delay_s=0.05, busy_tone_s=0.1, bad_number_s=0.1)


def scenario(**called_party: str) -> Scenario:
    """A one-line scenario whose called parties do what the test needs."""
    base = {
        "answer_rate": "1.0",
        "machine_share": "0.0",
        "busy_rate": "0.0",
        "bad_number_rate": "0.0",
        "ring": '{ kind = "fixed", mean = 0.3 }',
        "talk": '{ kind = "fixed", mean = 1.0 }',
        "patience": '{ kind = "fixed", mean = 20.0 }',
    }
    base.update(called_party)
    lines = "\n".join(f"{k} = {v}" for k, v in base.items())
    return parse_scenario(
        f"""
name = "sip-pbx-test"
shift_hours = 1
list_size = 1
audio = "synthetic"
audio_clips = 2
[agents]
count = 1
[called_party]
{lines}
"""
    )


@dataclass
class Pbx:
    server: SipPbxServer
    started: list[LegStarted] = field(default_factory=list)
    ended: list[LegEnded] = field(default_factory=list)

    @property
    def addr(self) -> tuple[str, int]:
        return self.server.address

    async def wait_ended(self, timeout: float = 5.0) -> LegEnded:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.ended:
            assert asyncio.get_running_loop().time() < deadline, "PBX reported no LegEnded"
            await asyncio.sleep(0.01)
        return self.ended.pop(0)


async def start_pbx(sc: Scenario, params: SipPbxParams = FAST, seed: int = 5) -> Pbx:
    holder: list[Pbx] = []

    def on_event(ev: LegStarted | LegEnded) -> None:
        if isinstance(ev, LegStarted):
            holder[0].started.append(ev)
        else:
            holder[0].ended.append(ev)

    server = SipPbxServer.from_scenario(sc, seed=seed, params=params, on_event=on_event)
    holder.append(Pbx(server))
    await server.start()
    return holder[0]


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.owner.received(data, (addr[0], addr[1]))


class Uac:
    """The caller: Endpoint + UDP socket + one re-armed timer."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[EndpointEvent] = asyncio.Queue()
        self.ep: Endpoint | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def open(self) -> Uac:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self), local_addr=("127.0.0.1", 0)
        )
        port = self.transport.get_extra_info("sockname")[1]
        self.ep = Endpoint(EndpointConfig("127.0.0.1", port, timers=TimerParams(t1=0.1)))
        return self

    @property
    def endpoint(self) -> Endpoint:
        assert self.ep is not None
        return self.ep

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.endpoint.receive_datagram(data, addr, self.now())
        self.pump()

    def pump(self) -> None:
        assert self.transport is not None
        for data, addr in self.endpoint.datagrams_to_send():
            self.transport.sendto(data, addr)
        while (ev := self.endpoint.next_event()) is not None:
            self.events.put_nowait(ev)
        if self._timer is not None:
            self._timer.cancel()
        when = self.endpoint.get_timer()
        if when is not None:
            self._timer = asyncio.get_running_loop().call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.endpoint.handle_timer(self.now())
        self.pump()

    async def next(self, kind: type[E], timeout: float = 5.0) -> E:
        """The next event, which must be of ``kind``."""
        ev = await asyncio.wait_for(self.events.get(), timeout)
        assert isinstance(ev, kind), f"expected {kind.__name__}, got {ev!r}"
        return ev

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()


class RtpSink:
    """A caller's RTP socket: records every packet, can send audio back."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, RtpPacket, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    async def open(self) -> RtpSink:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self), local_addr=("127.0.0.1", 0)
        )
        return self

    def rate(self) -> float:
        """Packets per second over the span they arrived in."""
        times = [t for t, _, _ in self.packets]
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        t = asyncio.get_running_loop().time()
        self.packets.append((t, RtpPacket.parse(data), addr))

    def offer(self, codecs: tuple[Codec, ...] = (PCMU, PCMA)) -> bytes:
        return build_offer("127.0.0.1", self.port, 4242, codecs=codecs).serialise()

    def audio(self) -> np.ndarray:
        """Decoded audio in arrival order (loopback does not reorder)."""
        pkts = [p for _, p, _ in self.packets]
        if not pkts:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([g711.decode(p.payload, p.payload_type) for p in pkts])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def free_udp_port_pair() -> int:
    """A port N with N and N + 2 both free (SIPp binds its -mp port and the one two
    above for video, and fails if either is taken)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            if port > 65533:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 2))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP port pair on 127.0.0.1")
