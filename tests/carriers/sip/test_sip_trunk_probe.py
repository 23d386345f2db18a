"""OPTIONS probes on real loopback sockets: a trunk that stops answering them is
tried last, so calls go straight to a trunk that answers instead of waiting out
``setup_timeout_s`` on the silent one; it comes back when it answers again.

The silent trunk is a raw UDP socket (it reads, and answers only when told to);
the healthy one is the SIP simulated PBX."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import numpy as np
import pytest

from carriers.base import Answered
from carriers.sip import parse_message
from carriers.sip.carrier import SipCarrier, SipCarrierParams, Trunk
from dialer.api.metrics import Metrics
from dialer.clock import RealClock
from tests.carriers.sip.peers import LOOPBACK, Collector, DialRequest
from tests.sim.uac import FAST, scenario, start_pbx


def ok_for(request: bytes) -> bytes:
    """A 200 to a raw OPTIONS, written by hand (not by our stack)."""
    keep = ("via:", "from:", "to:", "call-id:", "cseq:")
    lines = request.decode().split("\r\n")
    head = [ln for ln in lines if ln.lower().startswith(keep)]
    head = [ln + ";tag=peer1" if ln.lower().startswith("to:") else ln for ln in head]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(head) + "\r\nContent-Length: 0\r\n\r\n").encode()


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_a_trunk_silent_to_options_is_tried_last_and_comes_back() -> None:
    pbx = await start_pbx(scenario(ring='{ kind = "fixed", mean = 0.2 }'), FAST)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((LOOPBACK, 0))
    silent.setblocking(False)
    params = SipCarrierParams(
        trunks=(
            Trunk("first", LOOPBACK, silent.getsockname()[1], priority=0),
            Trunk("pbx", LOOPBACK, pbx.addr[1], priority=1, max_concurrent=10, max_cps=10),
        ),
        bind_host=LOOPBACK,
        bind_port=0,
        rtp_port_min=0,
        rtp_port_max=0,
        setup_timeout_s=0.3,
        match_port=True,  # both trunks are on 127.0.0.1
        options_interval_s=0.4,
        options_failures=2,
    )
    carrier = SipCarrier(RealClock(), params, np.random.default_rng(1))
    calls = Collector()
    carrier.set_listener(calls)
    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    def reader() -> None:
        try:
            while True:
                received.append(silent.recv(65535))
        except BlockingIOError:
            pass

    loop.add_reader(silent.fileno(), reader)
    try:
        await carrier.start()
        # two probes unanswered: "first" is marked down; the PBX answers its probes
        await until(lambda: carrier.trunk_down("first"), 5.0)
        assert not carrier.trunk_down("pbx")
        assert carrier.trunk_states() == {"first": False, "pbx": True}
        # operators see it in /metrics
        metrics = Metrics()
        metrics.update_trunks(carrier.trunk_states())
        text = metrics.render()[0].decode()
        assert 'dialer_trunk_up{trunk="first"} 0.0' in text
        assert 'dialer_trunk_up{trunk="pbx"} 1.0' in text
        assert [e[1:] for e in carrier.stats.trunk_events] == [("first", "down")]
        before = len(received)
        carrier.dial(DialRequest("c1", "+15550001111", timeout_s=15))
        await until(lambda: bool(calls.of("c1", Answered)), 5.0)
        carrier.hangup("c1")
        ended = await calls.wait("c1", 5.0)
        # straight to the PBX: no INVITE to the silent trunk, no failover wait
        assert ended.extra["tried"] == "pbx", ended.extra
        assert carrier.stats.failovers == 0
        invites = [m for m in received[before:] if m.startswith(b"INVITE")]
        assert invites == []
        # it answers a probe again: back in use, first again by priority
        await until(lambda: any(m.startswith(b"OPTIONS") for m in received[before:]), 3.0)
        probe = next(m for m in reversed(received) if m.startswith(b"OPTIONS"))
        assert parse_message(probe).call_id  # a well-formed OPTIONS
        n = len(received)
        await until(lambda: any(m.startswith(b"OPTIONS") for m in received[n:]), 3.0)
        fresh = next(m for m in received[n:] if m.startswith(b"OPTIONS"))
        silent.sendto(ok_for(fresh), carrier.local_addr)
        await until(lambda: not carrier.trunk_down("first"), 3.0)
        assert [e[1:] for e in carrier.stats.trunk_events] == [("first", "down"), ("first", "up")]
        assert carrier.trunk_states() == {"first": True, "pbx": True}
    finally:
        loop.remove_reader(silent.fileno())
        await carrier.stop()
        silent.close()
        await pbx.server.stop()


def test_options_failures_is_checked() -> None:
    with pytest.raises(ValueError, match="options_failures"):
        SipCarrierParams((Trunk("a", LOOPBACK),), options_failures=0)
