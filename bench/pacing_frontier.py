"""Where issue 5's occupancy bars sit against what the policies can reach.

    PYTHONPATH=. .venv/bin/python bench/pacing_frontier.py [--seeds 3]
        [--targets 1,3,6,12,25] [--agent-hours 40] [--jobs 2]
        [--out bench/plots/pacing] [scenario.toml ...]

Each policy that takes an abandon target (``predictive``, ``informed``,
``vicidial-adaptive``) runs at every target of ``--targets``; ``clairvoyant``
runs once per seed (it never abandons by choice, so the target does not move it).
With the simulator's foresight every run of a seed meets the same called
parties, so each run's occupancy is divided by the clairvoyant's for its seed.

It prints, per scenario and policy, occupancy as a fraction of the bound against
the realised abandon rate (a frontier), and the lowest abandon rate at which each
policy reaches the issue's bar (0.85 of the bound for 5-agent teams, 0.95 for 20
or more), read off the frontier by linear interpolation.  ``informed`` is the
predictive policy told exactly when every agent frees (``pacing.informed``): the
part of the gap it does not close is the price of not knowing call outcomes.
The plot (``frontier.png``) shows the same curves with the bar and the target.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from statistics import mean
from typing import Any

from sim import sweep as sw

DEFAULT_SCENARIOS = [
    Path("config/scenarios/research/r005-lowconnect.toml"),
    Path("config/scenarios/research/r005-small.toml"),
    Path("config/scenarios/research/r020-highconnect.toml"),
    Path("config/scenarios/research/r020-lunch.toml"),
]
FRONTIER_POLICIES = ["predictive", "informed", "vicidial-adaptive"]


def bar_for(agents: int) -> float:
    """Issue 5's occupancy bar, as a fraction of the clairvoyant bound."""
    return 0.95 if agents >= 20 else 0.85


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--targets", default="1,3,6,12,25")
    ap.add_argument("--agent-hours", type=float, default=40.0)
    ap.add_argument("--jobs", type=int, default=sw.default_jobs())
    ap.add_argument("--policies", default=",".join(FRONTIER_POLICIES))
    ap.add_argument("--out", type=Path, default=Path("bench/plots/pacing"))
    args = ap.parse_args()
    scenarios = sw.find_scenarios(args.scenarios or DEFAULT_SCENARIOS)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    targets = [t for t in sw.parse_targets(args.targets) if t is not None]
    policies = [p for p in sw.parse_policies(args.policies) if p != "clairvoyant"]
    grid = sw.build_grid(scenarios, policies, seeds, list(targets), agent_hours=args.agent_hours)
    grid += sw.build_grid(scenarios, ["clairvoyant"], seeds, [3.0], agent_hours=args.agent_hours)
    print(
        f"{len(grid)} runs on {args.jobs} processes; targets {args.targets} %; seeds "
        f"{seeds[0]}..{seeds[-1]}; shifts: "
        + ", ".join(dict.fromkeys(f"{g.scenario} {g.hours:g} h" for g in grid)),
        flush=True,
    )
    t0 = time.perf_counter()
    result = sw.run_grid(grid, args.jobs, sw.progress_lines(len(grid)))
    points = frontier(result.runs)
    print_frontier(points)
    args.out.mkdir(parents=True, exist_ok=True)
    sw.write_csv(args.out / "frontier.csv", points, list(points[0]))
    plot(points, args.out / "frontier.png")
    print(
        f"\nwall {time.perf_counter() - t0:.0f} s for {len(grid)} runs; outputs: "
        f"{args.out / 'frontier.csv'}, {args.out / 'frontier.png'}"
    )


def frontier(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean abandon rate and occupancy / bound per (scenario, policy, target)."""
    bound = {
        (r["scenario"], r["seed"]): float(r["occupancy"])
        for r in runs
        if r["policy"] == "clairvoyant"
    }
    cells: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in runs:
        if r["policy"] != "clairvoyant":
            cells.setdefault((r["scenario"], r["policy"], float(r["target_pct"])), []).append(r)
    out = []
    for (scenario, policy, target), rows in cells.items():
        ratios = [float(r["occupancy"]) / bound[(scenario, r["seed"])] for r in rows]
        out.append(
            {
                "scenario": scenario,
                "agents": int(rows[0]["agents"]),
                "policy": policy,
                "target_pct": target,
                "runs": len(rows),
                "abandon_pct": mean(float(r["abandon_rate"]) * 100 for r in rows),
                "max_abandon_pct": max(float(r["abandon_rate"]) * 100 for r in rows),
                "occupancy": mean(float(r["occupancy"]) for r in rows),
                "x_bound": mean(ratios),
                "bound": mean(bound[(scenario, r["seed"])] for r in rows),
                "wait_s": mean(float(r["agent_wait_mean_s"]) for r in rows),
            }
        )
    out.sort(key=lambda p: (p["agents"], p["scenario"], p["policy"], p["target_pct"]))
    return out


def abandon_to_reach(points: list[dict[str, Any]], level: float) -> float | None:
    """The abandon rate at which a frontier (sorted by target) first reaches
    ``level`` of the bound, interpolated between measured points; None if never."""
    prev: dict[str, Any] | None = None
    for p in points:
        if p["x_bound"] >= level:
            if prev is None or prev["x_bound"] >= p["x_bound"]:
                return float(p["abandon_pct"])
            f = (level - prev["x_bound"]) / (p["x_bound"] - prev["x_bound"])
            return float(prev["abandon_pct"] + f * (p["abandon_pct"] - prev["abandon_pct"]))
        prev = p
    return None


def print_frontier(points: list[dict[str, Any]]) -> None:
    print(
        f"\n{'scenario':18s} {'agents':>6s} {'policy':18s} {'target%':>7s} {'abandon%':>8s} "
        f"{'max%':>6s} {'occupancy':>9s} {'x bound':>7s} {'wait s':>6s}"
    )
    for p in points:
        print(
            f"{p['scenario']:18s} {p['agents']:6d} {p['policy']:18s} {p['target_pct']:7g} "
            f"{p['abandon_pct']:8.2f} {p['max_abandon_pct']:6.2f} {p['occupancy']:9.3f} "
            f"{p['x_bound']:7.3f} {p['wait_s']:6.1f}"
        )
    print("\nAbandon rate at which each policy reaches the issue's bar:")
    for (scenario, policy), pts in _curves(points).items():
        level = bar_for(pts[0]["agents"])
        at = abandon_to_reach(pts, level)
        top = max(pts, key=lambda p: p["x_bound"])
        said = (
            f"{at:.1f} %"
            if at is not None
            else f"not reached (best {top['x_bound']:.3f} at {top['abandon_pct']:.1f} %)"
        )
        print(f"  {scenario:18s} {policy:18s} bar {level:.2f}: {said}")


def _curves(points: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    curves: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in points:
        curves.setdefault((p["scenario"], p["policy"]), []).append(p)
    for pts in curves.values():
        pts.sort(key=lambda p: p["target_pct"])
    return curves


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = _curves(points)
    scenarios = list(dict.fromkeys(p["scenario"] for p in points))
    policies = list(dict.fromkeys(p["policy"] for p in points))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(4.2 * len(scenarios), 3.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, scenario in zip(axes.flat, scenarios, strict=True):
        agents = next(p["agents"] for p in points if p["scenario"] == scenario)
        for j, pol in enumerate(policies):
            pts = curves.get((scenario, pol))
            if pts:
                ax.plot(
                    [p["abandon_pct"] for p in pts],
                    [p["x_bound"] for p in pts],
                    marker="o",
                    ms=4,
                    color=colours(j % 10),
                    label=pol,
                )
        ax.axhline(bar_for(agents), color="red", lw=1, ls="--", label="issue 5 bar")
        ax.axvline(3.0, color="grey", lw=1, ls=":", label="3 % target")
        ax.set_title(f"{scenario} ({agents} agents)", fontsize=9)
        ax.set_xlabel("abandon rate, % of live answers")
        ax.set_ylabel("occupancy / clairvoyant bound")
        ax.set_ylim(top=1.01)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
