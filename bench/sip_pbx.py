"""How many concurrent calls the SIP-speaking simulated PBX can stream.

The PBX runs as `dialer sim pbx` in its own process (so its CPU is measured alone);
this script is the caller: one SIP socket driven by the project's Endpoint and one
RTP socket per call.  For each level it places N calls, waits until all are
answered, then for ``--window`` seconds counts the RTP that arrives and how evenly
it is paced.  Prints, per level: RTP delivered / expected (50 packets per second per
call), p99 of the packet gap minus 20 ms, the PBX process's CPU share and CPU per
call (ratio to the smallest level: flat means the per-call cost does not grow).

    .venv/bin/python bench/sip_pbx.py [--levels 25,50,100,200] [--window 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from carriers.sip.endpoint import CallAnswered, Endpoint, EndpointConfig, EndpointEvent
from carriers.sip.sdp import build_offer

SCENARIO = """
name = "bench-pbx"
shift_hours = 1
list_size = 1
audio = "synthetic"
audio_clips = 8
[agents]
count = 1
[called_party]
answer_rate = 1.0
machine_share = 0.3
busy_rate = 0.0
bad_number_rate = 0.0
ring = { kind = "fixed", mean = 0.5 }
talk = { kind = "fixed", mean = 3000.0 }
"""
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.times: list[float] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.times.append(asyncio.get_running_loop().time())


class Caller(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.ep: Endpoint | None = None
        self.transport: Any = None
        self.answered = 0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        port = transport.get_extra_info("sockname")[1]
        self.ep = Endpoint(EndpointConfig("127.0.0.1", port))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.ep is not None
        self.ep.receive_datagram(data, addr, asyncio.get_running_loop().time())
        self.pump()

    def pump(self) -> None:
        assert self.ep is not None
        for data, addr in self.ep.datagrams_to_send():
            self.transport.sendto(data, addr)
        while (ev := self.ep.next_event()) is not None:
            self.on_event(ev)
        if self.timer is not None:
            self.timer.cancel()
        when = self.ep.get_timer()
        if when is not None:
            self.timer = asyncio.get_running_loop().call_at(when, self.fire)

    def fire(self) -> None:
        assert self.ep is not None
        self.ep.handle_timer(asyncio.get_running_loop().time())
        self.pump()

    def on_event(self, ev: EndpointEvent) -> None:
        if isinstance(ev, CallAnswered):
            self.answered += 1


async def level(n: int, pbx: tuple[str, int], pid: int, window: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    _, caller = await loop.create_datagram_endpoint(Caller, local_addr=("127.0.0.1", 0))
    sinks: list[Sink] = []
    calls = []
    assert caller.ep is not None
    for i in range(n):
        _, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        sinks.append(sink)
        port = sink.transport.get_extra_info("sockname")[1]
        offer = build_offer("127.0.0.1", port, i + 1).serialise()
        calls.append(caller.ep.invite(f"sip:+1555{i:07d}@127.0.0.1", offer, pbx, loop.time()))
        caller.pump()
        if i % 50 == 49:
            await asyncio.sleep(0.5)  # set up at 100 calls/s
    t0 = loop.time()
    while caller.answered < n and loop.time() - t0 < 30:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # every stream under way
    start, cpu0 = loop.time(), cpu_seconds(pid)
    for s in sinks:
        s.times.clear()
    await asyncio.sleep(window)
    end, cpu1 = loop.time(), cpu_seconds(pid)
    got = sum(sum(1 for t in s.times if t <= end) for s in sinks)
    gaps = np.concatenate([np.diff(s.times) for s in sinks if len(s.times) > 1])
    for call in calls:
        caller.ep.bye(call, loop.time())
    caller.pump()
    await asyncio.sleep(0.5)
    for s in sinks:
        s.transport.close()
    if caller.timer is not None:
        caller.timer.cancel()
    caller.transport.close()
    share = (cpu1 - cpu0) / (end - start)
    return {
        "answered": caller.answered,
        "delivered": got / (n * (end - start) / 0.02),
        "gap_p99_ms": float(np.percentile(np.abs(gaps - 0.02), 99) * 1000) if len(gaps) else 0,
        "cpu_share": share,
        "cpu_ms_per_call_s": share / n * 1000,
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="25,50,100,200")
    ap.add_argument("--window", type=float, default=4.0)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        sc = Path(tmp) / "bench.toml"
        sc.write_text(SCENARIO)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialer.cli", "sim", "pbx", "--scenario", str(sc),
            "--port", "0", "--quiet", "--no-patience",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        first = (await proc.stdout.readline()).decode()
        port = int(first.split("udp:127.0.0.1:")[1].split()[0])
        print(first.strip())
        rows = []
        try:
            for n in levels:
                r = await level(n, ("127.0.0.1", port), proc.pid, args.window)
                rows.append((n, r))
        finally:
            proc.terminate()
            rest, _ = await proc.communicate()
        print(rest.decode().strip())  # the PBX's totals and its own timer lag
    base = rows[0][1]["cpu_ms_per_call_s"]
    print(
        "| calls | answered | RTP delivered | gap p99 - 20 ms | PBX CPU share "
        "| CPU ms per call-second | ratio to first level |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in rows:
        print(
            f"| {n} | {r['answered']:.0f} | {r['delivered']:.1%} | {r['gap_p99_ms']:.1f} ms "
            f"| {r['cpu_share']:.0%} | {r['cpu_ms_per_call_s']:.2f} "
            f"| {r['cpu_ms_per_call_s'] / base:.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
