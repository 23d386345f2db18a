"""Policies x scenarios in the simulator: abandonment and occupancy, with each
policy's occupancy as a ratio of progressive's in the same run.

    .venv/bin/python bench/pacing_matrix.py [--hours 2] [--seeds 3] [scenario.toml ...]

The clairvoyant bound needs the simulator to fill ``PacingSnapshot.oracle``; it is
left out until the simulator does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from sim.runner import SimOptions, run_scenario
from sim.scenario import load_scenario

POLICIES = ["progressive", "power", "erlang", "vicidial-adaptive", "predictive"]
DEFAULT = ["small-team-10", "mid-size-50", "bench-100"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--policies", default=",".join(POLICIES))
    args = ap.parse_args()
    paths = [Path(p) for p in args.scenarios] or [
        Path("config/scenarios") / f"{n}.toml" for n in DEFAULT
    ]
    policies = args.policies.split(",")
    print(f"{args.hours:g} h shifts, seeds 100..{100 + args.seeds - 1}, target from each scenario")
    print(
        f"{'scenario':16s} {'policy':18s} {'abandon%':>9s} {'max%':>6s} "
        f"{'occupancy':>9s} {'x prog':>7s} {'wait s':>7s} {'wall s':>7s}"
    )
    for path in paths:
        sc = load_scenario(path)
        base = None
        for policy in policies:
            ab, occ, wait = [], [], []
            t0 = time.perf_counter()
            for s in range(args.seeds):
                opts = SimOptions(policy=policy, seed=100 + s, hours=args.hours)
                r = asyncio.run(run_scenario(sc, opts)).summary
                ab.append(r["abandon_rate"] * 100)
                occ.append(r["occupancy"])
                wait.append(r["agent_wait_mean_s"])
            wall = time.perf_counter() - t0
            mocc = statistics.mean(occ)
            if base is None:
                base = mocc
            print(
                f"{sc.name:16s} {policy:18s} {statistics.mean(ab):9.2f} {max(ab):6.2f} "
                f"{mocc:9.3f} {mocc / base:7.2f} {statistics.mean(wait):7.1f} {wall:7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
