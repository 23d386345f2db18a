"""Parameter sweeps: policies x scenarios x seeds x abandon targets (x policy
parameters) in parallel processes, with per-run figures, summaries with 95%
confidence intervals, and plots.

Every run uses the simulator's foresight (``SimOptions.foresight``), so for one
seed every policy meets the same called parties in the same order: differences
between policies are not differences of luck.  A run is a pure function of its
:class:`RunSpec`, so the output does not depend on ``jobs`` or on scheduling.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from pacing.registry import create as create_policy
from pacing.registry import names as policy_names
from sim.runner import SimOptions, run_scenario
from sim.scenario import Scenario, ScenarioError, load_scenario

# per-run figures written to runs.csv, in this order
RUN_FIELDS = [
    "scenario",
    "agents",
    "policy",
    "policy_name",
    "params",
    "seed",
    "target_pct",
    "hours",
    "dials",
    "live_answers",
    "connects",
    "abandoned",
    "abandon_rate",
    "occupancy",
    "agent_wait_mean_s",
    "talk_min_per_agent_hour",
    "dials_per_hour",
    "connects_per_agent_hour",
    "wall_seconds",
]
# figures summarised with means and confidence intervals
SUMMARY_FIGURES = [
    ("occupancy", "occupancy", 1.0, "{:.3f}"),
    ("abandon_rate", "abandon %", 100.0, "{:.2f}"),
    ("agent_wait_mean_s", "agent wait s", 1.0, "{:.1f}"),
    ("talk_min_per_agent_hour", "talk min/agent-h", 1.0, "{:.1f}"),
    ("dials_per_hour", "dials/h", 1.0, "{:.0f}"),
]
MIN_HOURS = 0.25


class SweepError(ValueError):
    """A bad sweep argument; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RunSpec:
    scenario_path: str
    scenario: str
    agents: int
    policy_name: str
    params: tuple[tuple[str, float], ...]
    seed: int
    target_pct: float
    hours: float

    @property
    def label(self) -> str:
        """The policy as shown in tables: its name, with any swept parameters."""
        if not self.params:
            return self.policy_name
        inner = ",".join(f"{k}={v:g}" for k, v in self.params)
        return f"{self.policy_name}[{inner}]"

    @property
    def cost(self) -> float:
        """Rough relative wall cost (agent-hours), for ordering and progress."""
        return max(1.0, self.agents * self.hours)


@dataclass
class SweepResult:
    runs: list[dict[str, Any]]
    series: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- arguments


def parse_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise SweepError(f"{what}: give at least one value (comma-separated)")
    return items


def parse_policies(text: str) -> list[str]:
    known = policy_names()
    items = parse_list(text, "--policies")
    bad = [p for p in items if p not in known]
    if bad:
        raise SweepError(f"--policies: unknown policy {bad[0]!r}; known: {', '.join(known)}")
    if len(set(items)) != len(items):
        raise SweepError("--policies: a policy is named twice")
    return items


def parse_targets(text: str | None) -> list[float | None]:
    if text is None:
        return [None]
    out: list[float | None] = []
    for item in parse_list(text, "--targets"):
        try:
            v = float(item)
        except ValueError:
            raise SweepError(f"--targets: {item!r} is not a number (percent)") from None
        if not 0.0 <= v <= 100.0:
            raise SweepError(f"--targets: {item} is outside 0..100 (percent)")
        out.append(v)
    return out


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SweepError(f"{where}: {text!r} is not a number") from None


def parse_params(
    items: Sequence[str], policies: Sequence[str]
) -> dict[str, list[dict[str, float]]]:
    """``--param POLICY.NAME=v1,v2`` (repeatable) -> every combination per policy.

    Each combination is checked by building the policy, so a wrong name or value
    fails here with the policy's own message rather than in a worker."""
    grid: dict[str, dict[str, list[float]]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        pol, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not pol or not name:
            raise SweepError(
                f"--param {item!r}: expected POLICY.NAME=v1,v2 (e.g. predictive.min_gain=0.1,0.2)"
            )
        if pol not in policies:
            raise SweepError(f"--param {item!r}: policy {pol!r} is not in --policies")
        vals = [_number(v, f"--param {item!r}") for v in parse_list(values, f"--param {item!r}")]
        if name in grid.setdefault(pol, {}):
            raise SweepError(f"--param {item!r}: {pol}.{name} is given twice")
        grid[pol][name] = vals
    out: dict[str, list[dict[str, float]]] = {}
    for pol in policies:
        axes = grid.get(pol, {})
        combos = [dict(zip(axes, vs, strict=True)) for vs in itertools.product(*axes.values())]
        for combo in combos:
            try:
                create_policy(pol, **_typed(combo))
            except ValueError as exc:
                raise SweepError(f"--param: {exc}") from None
        out[pol] = combos or [{}]
    return out


def _typed(params: dict[str, float]) -> dict[str, Any]:
    # integral values go in as ints so integer parameters (sample counts) accept them
    return {k: int(v) if float(v).is_integer() and abs(v) < 2**31 else v for k, v in params.items()}


def find_scenarios(paths: Iterable[Path]) -> list[tuple[Path, Scenario]]:
    """Scenario files from directories (every ``*.toml``) and files, validated."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.toml"))
            if not found:
                raise SweepError(f"--scenarios {p}: the directory holds no .toml scenario")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise SweepError(f"--scenarios {p}: no such file or directory")
    out: list[tuple[Path, Scenario]] = []
    names: dict[str, Path] = {}
    for f in files:
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            raise SweepError(str(exc)) from None
        if sc.name in names and names[sc.name] != f:
            raise SweepError(
                f"--scenarios: {f} and {names[sc.name]} both name scenario {sc.name!r}"
            )
        names[sc.name] = f
        out.append((f, sc))
    return out


def shift_hours(sc: Scenario, hours: float | None, agent_hours: float | None) -> float:
    """The simulated shift: fixed, or sized so each run costs about ``agent_hours``
    (small teams get long shifts, where a few abandons do not swamp the rate)."""
    if hours is not None:
        return hours
    if agent_hours is not None:
        h = max(MIN_HOURS, agent_hours / sc.agents.count)
        # a scenario's mid-shift changes are what it is about: keep them in the shift
        ends = [ch.until_hour + 0.25 for ch in sc.called_party.changes]
        return min(sc.shift_hours, max([h, *ends]))
    return sc.shift_hours


def build_grid(
    scenarios: Sequence[tuple[Path, Scenario]],
    policies: Sequence[str],
    seeds: Sequence[int],
    targets: Sequence[float | None],
    params: dict[str, list[dict[str, float]]] | None = None,
    hours: float | None = None,
    agent_hours: float | None = None,
) -> list[RunSpec]:
    if not seeds:
        raise SweepError("--seeds: at least one seed")
    if hours is not None and agent_hours is not None:
        raise SweepError("give --hours or --agent-hours, not both")
    if hours is not None and not 0 < hours <= 24:
        raise SweepError(f"--hours: {hours} is outside (0, 24]")
    if agent_hours is not None and agent_hours <= 0:
        raise SweepError(f"--agent-hours: {agent_hours} must be > 0")
    params = params or {}
    grid: list[RunSpec] = []
    for path, sc in scenarios:
        h = shift_hours(sc, hours, agent_hours)
        for target in targets:
            t = sc.campaign.abandon_target_pct if target is None else target
            for pol in policies:
                for combo in params.get(pol, [{}]):
                    for seed in seeds:
                        grid.append(
                            RunSpec(
                                str(path),
                                sc.name,
                                sc.agents.count,
                                pol,
                                tuple(sorted(combo.items())),
                                seed,
                                t,
                                h,
                            )
                        )
    return grid


# ---------------------------------------------------------------- running

_SCENARIOS: dict[str, Scenario] = {}


_Row = tuple[dict[str, Any], list[tuple[float, int, int]]]


def run_one(spec: RunSpec) -> _Row:
    """One simulated shift (in a worker process): its row and its abandon series."""
    sc = _SCENARIOS.get(spec.scenario_path)
    if sc is None:
        sc = _SCENARIOS[spec.scenario_path] = load_scenario(Path(spec.scenario_path))
    opts = SimOptions(
        policy=spec.policy_name,
        seed=spec.seed,
        abandon_target_pct=spec.target_pct,
        hours=spec.hours,
        foresight=True,
        policy_params=_typed(dict(spec.params)),
    )
    s = asyncio.run(run_scenario(sc, opts)).summary
    agent_hours = spec.agents * spec.hours
    row: dict[str, Any] = {
        "scenario": spec.scenario,
        "agents": spec.agents,
        "policy": spec.label,
        "policy_name": spec.policy_name,
        "params": ";".join(f"{k}={v:g}" for k, v in spec.params),
        "seed": spec.seed,
        "target_pct": spec.target_pct,
        "hours": spec.hours,
        "connects_per_agent_hour": s["connects"] / agent_hours if agent_hours else 0.0,
    }
    for k in RUN_FIELDS:
        if k not in row:
            row[k] = s[k]
    return row, list(s["series"])


class RunFailed(RuntimeError):
    """A run of the grid raised; the message names the run."""


def _checked(spec: RunSpec, fn: Callable[[RunSpec], _Row]) -> _Row:
    try:
        return fn(spec)
    except Exception as exc:
        raise RunFailed(
            f"run {spec.scenario} / {spec.label} / seed {spec.seed} / target "
            f"{spec.target_pct:g} % failed: {type(exc).__name__}: {exc}"
        ) from exc


def _result(fut: Future[_Row], spec: RunSpec) -> _Row:
    return fut.result()


def run_grid(
    grid: Sequence[RunSpec],
    jobs: int = 1,
    on_done: Callable[[RunSpec, dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Runs every spec; ``jobs`` > 1 uses that many worker processes (spawned, so
    no lock or thread of the parent leaks into them).  Rows come back in grid order."""
    if jobs < 1:
        raise SweepError(f"--jobs: {jobs} must be >= 1")
    results: dict[int, tuple[dict[str, Any], list[tuple[float, int, int]]]] = {}
    # the largest runs first, so one long run does not finish alone at the end
    order = sorted(range(len(grid)), key=lambda i: -grid[i].cost)
    if jobs == 1 or len(grid) == 1:
        for i in order:
            results[i] = _checked(grid[i], run_one)
            if on_done is not None:
                on_done(grid[i], results[i][0])
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))
        try:
            pending: dict[Future[_Row], int] = {pool.submit(run_one, grid[i]): i for i in order}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = _checked(grid[i], partial(_result, fut))
                    if on_done is not None:
                        on_done(grid[i], results[i][0])
        finally:
            # on Ctrl-C or a failed run, queued runs are dropped rather than waited for
            pool.shutdown(wait=True, cancel_futures=True)
    runs, series = [], []
    for i, spec in enumerate(grid):
        row, ser = results[i]
        runs.append(row)
        for hour, abandoned, live in ser:
            if hour > spec.hours + 1e-6:
                break  # calls finishing after the shift would stretch the time axis
            series.append(
                {
                    "scenario": spec.scenario,
                    "policy": spec.label,
                    "seed": spec.seed,
                    "target_pct": spec.target_pct,
                    "hour": hour,
                    "abandoned": abandoned,
                    "live_answers": live,
                }
            )
    return SweepResult(runs, series)


def progress_lines(total: int, every: int = 10) -> Callable[[RunSpec, dict[str, Any]], None]:
    """An ``on_done`` for :func:`run_grid` that prints "k/total runs, s" every
    ``every`` runs: for scripts whose output goes to a log rather than a terminal."""
    t0 = time.perf_counter()
    done = 0

    def tick(spec: RunSpec, row: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        if done % every == 0 or done == total:
            print(f"  {done}/{total} runs, {time.perf_counter() - t0:.0f} s", flush=True)

    return tick


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


# ---------------------------------------------------------------- summaries


def ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student t)."""
    from scipy import stats

    m = mean(values)
    if len(values) < 2:
        return m, math.nan
    half = float(stats.t.ppf(0.975, len(values) - 1)) * stdev(values) / math.sqrt(len(values))
    return m, half


def group_key(row: dict[str, Any]) -> tuple[str, str, float]:
    return (str(row["scenario"]), str(row["policy"]), float(row["target_pct"]))


def summarise_runs(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, policy, target): means, CI half-widths, the worst
    run's abandon rate, and occupancy as a fraction of clairvoyant's (per seed)."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(group_key(r), []).append(r)
    bound = {
        (r["scenario"], r["target_pct"], r["seed"]): float(r["occupancy"])
        for r in runs
        if r["policy"] == "clairvoyant"
    }
    out = []
    for (scenario, policy, target), rows in groups.items():
        s: dict[str, Any] = {
            "scenario": scenario,
            "agents": rows[0]["agents"],
            "policy": policy,
            "target_pct": target,
            "runs": len(rows),
            "abandon_max": max(float(r["abandon_rate"]) for r in rows),
        }
        for key, _, _, _ in SUMMARY_FIGURES:
            s[key], s[key + "_ci"] = ci95([float(r[key]) for r in rows])
        ratios = [
            float(r["occupancy"]) / bound[k]
            for r in rows
            if (k := (scenario, target, r["seed"])) in bound and bound[k] > 0
        ]
        if ratios:
            s["of_bound"], s["of_bound_ci"] = ci95(ratios)
            s["of_bound_min"] = min(ratios)
        out.append(s)
    return out


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    has_bound = any("of_bound" in s for s in summary)
    head = ["scenario", "agents", "policy", "target %", "runs"]
    head += [title for _, title, _, _ in SUMMARY_FIGURES] + ["max abandon %"]
    if has_bound:
        head.append("occupancy / clairvoyant")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def pm(v: float, half: float, scale: float, fmt: str) -> str:
        txt = fmt.format(v * scale)
        return txt if math.isnan(half) else f"{txt} ± {fmt.format(half * scale)}"

    for s in summary:
        cells = [
            s["scenario"],
            str(s["agents"]),
            s["policy"],
            f"{s['target_pct']:g}",
            str(s["runs"]),
        ]
        for key, _, scale, fmt in SUMMARY_FIGURES:
            cells.append(pm(s[key], s[key + "_ci"], scale, fmt))
        cells.append(f"{s['abandon_max'] * 100:.2f}")
        if has_bound:
            cells.append(
                pm(s["of_bound"], s["of_bound_ci"], 1.0, "{:.3f}") if "of_bound" in s else ""
            )
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "\n".join(lines)
        + "\n\nMeans over seeds ± the half-width of a 95% confidence interval (Student t).\n"
    )


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


# ---------------------------------------------------------------- plots


def _clipped(half: list[float], v: list[float], lo: float, hi: float) -> list[list[float]]:
    """Asymmetric error bars kept inside the figure's possible range."""
    h = [0.0 if math.isnan(x) else x for x in half]
    return [
        [min(a, b - lo) for a, b in zip(h, v, strict=True)],
        [min(a, hi - b) for a, b in zip(h, v, strict=True)],
    ]


def plot_pacing_curve(summary: Sequence[dict[str, Any]], path: Path) -> None:
    """Occupancy against abandon rate, one panel per scenario, one colour per
    policy; a policy's points at several targets are joined (its pacing curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(s["scenario"] for s in summary))
    policies = list(dict.fromkeys(s["policy"] for s in summary))
    cols = min(4, len(scenarios))
    rows_n = math.ceil(len(scenarios) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.6 * rows_n), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        targets = sorted({s["target_pct"] for s in summary if s["scenario"] == scenario})
        for t in targets:
            ax.axvline(t, color="grey", lw=0.8, ls=":")
        for j, pol in enumerate(policies):
            pts = sorted(
                (s for s in summary if s["scenario"] == scenario and s["policy"] == pol),
                key=lambda s: s["target_pct"],
            )
            if not pts:
                continue
            x = [p["abandon_rate"] * 100 for p in pts]
            y = [p["occupancy"] for p in pts]
            xe = _clipped([p["abandon_rate_ci"] * 100 for p in pts], x, 0.0, 100.0)
            ye = _clipped([p["occupancy_ci"] for p in pts], y, 0.0, 1.0)
            ax.errorbar(
                x,
                y,
                xerr=xe,
                yerr=ye,
                marker="o",
                ms=4,
                capsize=2,
                color=colours(j % 10),
                label=pol,
            )
        ax.set_title(f"{scenario} ({pts[0]['agents'] if pts else ''} agents)", fontsize=9)
        ax.set_xlabel("abandon rate, % of live answers")
        ax.set_ylabel("occupancy")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_abandon_over_shift(series: Sequence[dict[str, Any]], path: Path) -> None:
    """The campaign's cumulative abandon rate through the shift, mean over seeds,
    one panel per scenario (first target only), one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r["scenario"] for r in series))
    policies = list(dict.fromkeys(r["policy"] for r in series))
    cols = min(4, max(1, len(scenarios)))
    rows_n = max(1, math.ceil(len(scenarios) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.4 * rows_n), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        mine = [r for r in series if r["scenario"] == scenario]
        target = mine[0]["target_pct"]
        ax.axhline(target, color="grey", lw=0.8, ls=":")
        for j, pol in enumerate(policies):
            by_hour: dict[float, list[float]] = {}
            for r in mine:
                if r["policy"] == pol and r["target_pct"] == target and r["live_answers"] > 0:
                    by_hour.setdefault(r["hour"], []).append(
                        100.0 * r["abandoned"] / r["live_answers"]
                    )
            if by_hour:
                hours = sorted(by_hour)
                ax.plot(
                    hours,
                    [mean(by_hour[h]) for h in hours],
                    color=colours(j % 10),
                    label=pol,
                    lw=1.2,
                )
        ax.set_title(scenario, fontsize=9)
        ax.set_xlabel("hour of shift")
        ax.set_ylabel("abandon rate so far, %")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, max(1, len(labels))), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(result: SweepResult, out: Path) -> dict[str, Path]:
    """runs.csv, series.csv, summary.csv, summary.md and the two plots under ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"--out {out}: cannot create it: {exc.strerror}") from None
    summary = summarise_runs(result.runs)
    paths = {
        "runs": out / "runs.csv",
        "series": out / "series.csv",
        "summary_csv": out / "summary.csv",
        "summary_md": out / "summary.md",
        "pacing_curve": out / "pacing_curve.png",
        "abandon_over_shift": out / "abandon_over_shift.png",
    }
    write_csv(paths["runs"], result.runs, RUN_FIELDS)
    write_csv(
        paths["series"],
        result.series,
        ["scenario", "policy", "seed", "target_pct", "hour", "abandoned", "live_answers"],
    )
    sum_fields = ["scenario", "agents", "policy", "target_pct", "runs", "abandon_max"]
    for key, _, _, _ in SUMMARY_FIGURES:
        sum_fields += [key, key + "_ci"]
    sum_fields += ["of_bound", "of_bound_ci", "of_bound_min"]
    write_csv(paths["summary_csv"], summary, sum_fields)
    paths["summary_md"].write_text(markdown_table(summary), encoding="utf-8")
    plot_pacing_curve(summary, paths["pacing_curve"])
    plot_abandon_over_shift(result.series, paths["abandon_over_shift"])
    return paths


def spec_dict(spec: RunSpec) -> dict[str, Any]:
    return asdict(spec)
