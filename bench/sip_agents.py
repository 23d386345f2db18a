"""SIP agents: connect delay and bridged calls per core, on loopback.

Run: .venv/bin/python bench/sip_agents.py [--quick] [--seconds 60] [--levels 50,100,200,300]

Part 1, connect delay (the 2-second rule).  The whole engine in real time (as
`make demo SIP=1`): customers at the SIP simulated PBX with recorded-style
greetings, AMD on their RTP, simulated agents on SIP phones registered with the
engine.  For every person bridged to an agent, the PBX measures from the end of
the speech in their greeting to the first agent audio it receives (the agent's
phone's tone, relayed by our bridge): that is the delay the person lives
through.  Also shown: the engine's own figure (AMD's end of greeting to the
bridge, stored per attempt as ``connect_delay_s``) and the carrier's bridge() to
the first RTP packet sent to the agent (the connect tone).  Run in progressive
mode (an agent is free for every answer, so the figure is the system's latency)
and in predictive mode (the demo's pacing; waits for an agent count too).

Part 2, bridged calls per core.  The engine's SipCarrier alone in this process
(one asyncio loop, one core): it nails up N agents' phones, dials N customers
and bridges each on answer; the phones and the PBX run in another process.  In
steady state every bridged call moves 4 x 50 RTP packets a second through us
(customer and agent, in and out).  The PBX and the phones run in two more
processes; on a 2-core machine they compete with the engine for the cores,
so the level where the peers fall behind (calls end early, set-ups time out)
can come before the engine's own limit.  Measured over a window: the process's CPU
time per wall second (cores), frames relayed against the 2 x 50 per second per
call expected, and event-loop lag p50/p99.  Calls per core = N / cores used.  A
level holds when >= 98 % of the expected frames were relayed and lag p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from carriers.base import (  # noqa: E402
    AgentLegRequest,
    AgentLineEvent,
    AgentLineUp,
    Answered,
    CarrierEvent,
    DialRequest,
    Ended,
)
from carriers.sip.carrier import SipCarrier, SipCarrierParams, Trunk  # noqa: E402
from dialer.clock import RealClock  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# -- part 1 ----------------------------------------------------------------------------------
def connect_delay(seconds: float, mode: str, agents: int) -> dict[str, object]:
    from sim.sip_demo import run_sip_demo

    src = (ROOT / "config" / "scenarios" / "demo-sip.toml").read_text()
    # the demo's scenario, with more agents so a minute bridges many calls
    src = src.replace('mode = "predictive"', f'mode = "{mode}"')
    src = src.replace("count = 8", f"count = {agents}")
    src = src.replace("list_size = 400", "list_size = 3000")
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / f"bench-{mode}.toml"
        scenario.write_text(src)
        db = Path(tmp) / "bench.db"
        res = asyncio.run(run_sip_demo(scenario, f"sqlite+aiosqlite:///{db}", seconds))
        with sqlite3.connect(db) as conn:
            engine = [
                float(r[0])
                for r in conn.execute(
                    "select connect_delay_s from attempts where result = 'connected' "
                    "and connect_delay_s is not null"
                )
            ]
    heard = res.heard_delays
    after_all = res.heard_delays_all
    return {
        "mode": mode,
        "agents": agents,
        "seconds": seconds,
        "bridged": res.bridges,
        "measured": len(heard),
        # the silence the person sat through, from their last words to the agent
        "silence_to_agent_p50_ms": round(pct(heard, 50) * 1000),
        "silence_to_agent_p99_ms": round(pct(heard, 99) * 1000),
        "silence_to_agent_max_ms": round(max(heard, default=float("nan")) * 1000),
        "within_2s": f"{sum(d <= 2.0 for d in heard)}/{len(heard)}",
        # against the end of all the greeting's speech (negative: the agent came in
        # while the person was still talking)
        "after_all_speech_p50_ms": round(pct(after_all, 50) * 1000),
        "after_all_speech_p99_ms": round(pct(after_all, 99) * 1000),
        # the engine's own figure: AMD's end of greeting to the bridge
        "engine_connect_delay_p50_ms": round(pct(engine, 50) * 1000),
        "engine_connect_delay_p99_ms": round(pct(engine, 99) * 1000),
        "engine_connect_delay_max_ms": round(max(engine, default=float("nan")) * 1000),
        "bridge_to_tone_p50_ms": round(pct(res.bridge_to_audio, 50) * 1000, 1),
        "bridge_to_tone_p99_ms": round(pct(res.bridge_to_audio, 99) * 1000, 1),
        "abandoned": res.stats.get("abandoned"),
    }


# -- part 2: the peers' process ----------------------------------------------------------------
async def peers_main(n: int, role: str) -> None:
    """The PBX (people who talk for ten minutes) or N phones, each role in its
    own process; prints its addresses as one JSON line, then runs until stdin
    closes."""
    from sim.scenario import parse_scenario
    from sim.sip_pbx import SipPbxParams
    from sim.sip_pbx_server import SipPbxServer
    from sim.sip_phones import SipPhone

    sc = parse_scenario(
        """
name = "bridge-load"
shift_hours = 1
list_size = 1
audio = "synthetic"
audio_clips = 4
[agents]
count = 1
[called_party]
answer_rate = 1.0
machine_share = 0.0
busy_rate = 0.0
bad_number_rate = 0.0
ring = { kind = "fixed", mean = 0.5 }
talk = { kind = "fixed", mean = 600.0 }
patience = { kind = "fixed", mean = 600.0 }
"""
    )
    clock = RealClock()
    loop = asyncio.get_running_loop()
    if role == "pbx":
        server = SipPbxServer.from_scenario(
            sc,
            host="127.0.0.1",
            port=0,
            params=SipPbxParams(channels=n + 10, reply_tone_hz=1000.0),
        )
        _, pbx_port = await server.start()
        print(json.dumps({"pbx": pbx_port}), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        await server.stop()
        return
    phones = [SipPhone(clock, f"agent{i:04d}", ("127.0.0.1", 5060)) for i in range(n)]
    for p in phones:
        await p.start(register=False)
    print(json.dumps({"phones": [p.uri for p in phones]}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for p in phones:
        await p.stop(unregister=False)


# -- part 2: the engine's side -----------------------------------------------------------------
class Bridger:
    """Bridges every answered customer to the next free line."""

    def __init__(self, carrier: SipCarrier) -> None:
        self.carrier = carrier
        self.free: list[str] = []
        self.up: set[str] = set()
        self.bridged: dict[str, str] = {}
        self.ended = 0

    def on_line(self, ev: AgentLineEvent) -> None:
        if isinstance(ev, AgentLineUp):
            self.up.add(ev.agent_id)
            self.free.append(ev.agent_id)

    def on_carrier_event(self, ev: CarrierEvent) -> None:
        if isinstance(ev, Answered) and self.free:
            agent = self.free.pop()
            self.bridged[ev.call_id] = agent
            self.carrier.bridge(ev.call_id, agent)
        elif isinstance(ev, Ended):
            self.ended += 1


async def bridge_level(n: int, window_s: float) -> dict[str, object]:
    peers = [
        subprocess.Popen(
            [sys.executable, __file__, "--peers", str(n), "--role", role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for role in ("pbx", "phones")
    ]
    try:
        info: dict[str, object] = {}
        for proc in peers:
            assert proc.stdout is not None
            line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
            info.update(json.loads(line))
        clock = RealClock()
        pbx_port = int(str(info["pbx"]))
        params = SipCarrierParams(
            trunks=(Trunk("pbx", "127.0.0.1", pbx_port, max_concurrent=n + 10, max_cps=100),),
            bind_host="127.0.0.1",
            bind_port=0,
            rtp_port_min=0,
            rtp_port_max=0,
            agents=True,
        )
        carrier = SipCarrier(clock, params, np.random.default_rng(1))
        bridger = Bridger(carrier)
        carrier.set_listener(bridger)
        carrier.set_line_listener(bridger.on_line)
        await carrier.start()
        # the phones were told port 5060; they answer whoever calls them
        phones = info["phones"]
        assert isinstance(phones, list)
        for i, uri in enumerate(phones):
            carrier.nail_up(AgentLegRequest(f"agent{i:04d}", uri))
        t0 = clock.monotonic()
        while len(bridger.up) < n and clock.monotonic() - t0 < 60:
            await asyncio.sleep(0.05)
        for i in range(n):
            carrier.dial(DialRequest(f"c{i}", f"+1212555{i:04d}", timeout_s=30))
            if i % 50 == 49:
                await asyncio.sleep(0.6)  # within the trunk's 100 set-ups a second
        t0 = clock.monotonic()
        while len(bridger.bridged) < n and clock.monotonic() - t0 < 60:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # let every bridge reach steady state
        lags: list[float] = []

        def tick(due: float) -> None:
            lags.append(max(0.0, clock.monotonic() - due))
            nxt = clock.monotonic() + 0.01
            clock.call_at(nxt, lambda: tick(nxt))

        tick(clock.monotonic())
        r0, f0, w0 = (
            resource.getrusage(resource.RUSAGE_SELF),
            carrier.relayed_total(),
            clock.monotonic(),
        )
        await asyncio.sleep(window_s)
        r1, f1, w1 = (
            resource.getrusage(resource.RUSAGE_SELF),
            carrier.relayed_total(),
            clock.monotonic(),
        )
        wall = w1 - w0
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        cores = cpu / wall
        relayed = (f1 - f0) / wall
        expected = len(bridger.bridged) * 2 * 50
        out = {
            "calls": n,
            "lines_up": len(bridger.up),
            "bridged": len(bridger.bridged),
            "ended_early": bridger.ended,
            "cores": round(cores, 3),
            "calls_per_core": round(len(bridger.bridged) / cores) if cores > 0 else None,
            "relayed_fps": round(relayed),
            "relayed_share": round(relayed / expected, 4) if expected else 0.0,
            "lag_p50_ms": round(pct(lags, 50) * 1000, 1),
            "lag_p99_ms": round(pct(lags, 99) * 1000, 1),
            "dropped_frames": sum(line.stream.forward_dropped for line in carrier._lines.values()),
        }
        out["holds"] = bool(out["relayed_share"] >= 0.98 and out["lag_p99_ms"] < 20)  # type: ignore[operator]
        await carrier.stop()
        return out
    finally:
        for proc in peers:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in peers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--peers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--role", default="pbx", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    ap.add_argument("--seconds", type=float, default=90.0, help="part 1: seconds per mode")
    ap.add_argument("--agents", type=int, default=30, help="part 1: agents (on SIP phones)")
    ap.add_argument("--levels", default="50,100,200,300", help="part 2: concurrent bridged calls")
    ap.add_argument("--window", type=float, default=15.0, help="part 2: measuring window, s")
    ap.add_argument("--skip-delay", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    args = ap.parse_args()
    if args.peers:
        asyncio.run(peers_main(args.peers, args.role))
        return
    seconds = 15.0 if args.quick else args.seconds
    levels = [int(x) for x in ("20,50" if args.quick else args.levels).split(",")]
    window = 5.0 if args.quick else args.window
    if not args.skip_delay:
        print("connect delay: the customer's silence from their last words to the agent's audio")
        for mode in ("progressive", "predictive"):
            print(json.dumps(connect_delay(seconds, mode, args.agents)), flush=True)
    if not args.skip_load:
        print("bridged calls per core (this process: SipCarrier only; peers in another process)")
        for n in levels:
            res = asyncio.run(bridge_level(n, window))
            print(json.dumps(res), flush=True)
            if not res["holds"]:
                break


if __name__ == "__main__":
    main()
