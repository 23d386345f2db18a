"""How fast the simulator runs an 8-hour shift of 100 agents.

Target (issue 2): under 10 s of wall time on a 2-core machine.  Prints simulated
seconds per wall second and events per second, for the figures-only run (the way
researchers sweep) and for a run that records every attempt and transition in
SQLite (the way `make demo` runs), so the cost of persistence is visible as a ratio.

    .venv/bin/python bench/sim_speed.py [--policy NAME] [--skip-store]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from dialer.store.db import Database
from sim.runner import SimOptions, run_scenario
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "config/scenarios/bench-100.toml"))
    ap.add_argument("--policy", default=None)
    ap.add_argument("--skip-store", action="store_true")
    args = ap.parse_args()
    sc = load_scenario(Path(args.scenario))
    print(
        f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}"
    )
    print(f"scenario: {sc.name}: {sc.agents.count} agents, {sc.shift_hours} h shift")

    t, cpu0 = time.perf_counter(), time.process_time()
    res = asyncio.run(run_scenario(sc, SimOptions(policy=args.policy)))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu0
    s = res.summary
    # CPU seconds are printed too: on a shared machine they move less than wall time
    print(
        f"figures only : wall {wall:6.2f} s | cpu {cpu:6.2f} s | "
        f"{s['sim_seconds'] / wall:8.0f} sim-s per wall-s | "
        f"{s['events'] / wall:8.0f} events/s | {s['dials']} dials | "
        f"occupancy {s['occupancy']:.1%} | abandon {s['abandon_rate']:.2%} | "
        f"policy {s['policy']}"
    )
    print(f"target: 8 h x 100 agents in < 10 s wall: {'MET' if wall < 10 else 'MISSED'}")
    if args.skip_store:
        return

    async def stored() -> tuple[float, dict[str, object]]:
        with tempfile.TemporaryDirectory() as d:
            db = Database(f"sqlite+aiosqlite:///{d}/bench.db")
            try:
                await db.migrate()
                t0 = time.perf_counter()
                r = await run_scenario(sc, SimOptions(policy=args.policy, db=db))
                return time.perf_counter() - t0, r.summary
            finally:
                await db.close()

    wall2, s2 = asyncio.run(stored())
    print(
        f"with SQLite  : wall {wall2:6.2f} s | {float(s2['sim_seconds']) / wall2:8.0f} sim-s per "
        f"wall-s | {float(s2['events']) / wall2:8.0f} events/s | ratio to figures-only "
        f"{wall2 / wall:.2f}x"
    )


if __name__ == "__main__":
    main()
