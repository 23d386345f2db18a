"""The RTP stream's play on real loopback sockets: a prompt that is played again
from its own on_done (a looped voice) keeps going without a busy loop, and a new
play replaces the one playing (barge-in)."""

from __future__ import annotations

import asyncio
import itertools
import socket

import numpy as np

from carriers.rtp.prompt import from_samples
from carriers.rtp.session import MediaSession
from carriers.rtp.udp import RtpPortPool, RtpStream
from dialer.clock import RealClock

PT_PCMU = 0


async def test_replay_from_on_done_and_barge_in() -> None:
    loop = asyncio.get_running_loop()
    clock = RealClock(loop)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    stream = RtpStream(clock, RtpPortPool("127.0.0.1"), loop, lambda f, t: None)
    stream.start(MediaSession(PT_PCMU, None, np.random.default_rng(1)), sink.getsockname())
    short = from_samples("short", np.full(160 * 3, 1000, dtype=np.int16)).payloads(PT_PCMU)
    long = from_samples("long", np.full(160 * 50, 1000, dtype=np.int16)).payloads(PT_PCMU)
    done: list[str] = []
    at: list[float] = []

    def again() -> None:
        done.append("short")
        at.append(loop.time())
        if len(done) < 4:
            stream.play(short, again)  # played again from its own on_done

    stream.play(short, again)
    await asyncio.sleep(0.5)
    assert done == ["short"] * 4
    # each replay waits for its own three frames: 60 ms apart, not a spin
    assert all(b - a > 0.04 for a, b in itertools.pairwise(at))
    stream.play(long, lambda: done.append("long"))
    await asyncio.sleep(0.1)
    stream.play(short, lambda: done.append("barged"))  # replaces the 1 s prompt
    await asyncio.sleep(0.3)
    assert done[4:] == ["barged"]  # the replaced prompt's on_done never ran
    await asyncio.sleep(1.2)
    assert done[4:] == ["barged"]
    received = 0
    while True:
        try:
            sink.recv(2048)
        except BlockingIOError:
            break
        received += 1
    # 12 short frames, ~5 of the long one before the barge-in, 3 more short ones
    assert 16 <= received <= 24
    stream.close()
    sink.close()
