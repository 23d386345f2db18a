"""`dialer sim sweep`: the grid, its outputs, its errors; and the research scenarios."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialer.cli import app
from sim import sweep as sw
from sim.scenario import load_scenario
from tests.conftest import ROOT

TINY = """
name = "{name}"
seed = 3
shift_hours = 0.15
list_size = 2000
audio = "synthetic"
audio_clips = 4
[agents]
count = {agents}
login_spread_s = 5.0
[called_party]
answer_rate = 0.45
machine_share = 0.25
talk = {{ kind = "lognormal", mean = 60.0, sd = 40.0, min = 5.0, max = 600.0 }}
[campaign]
abandon_target_pct = 3.0
"""


def scenarios(tmp_path: Path) -> Path:
    d = tmp_path / "scen"
    d.mkdir()
    (d / "a.toml").write_text(TINY.format(name="tiny-a", agents=3))
    (d / "b.toml").write_text(TINY.format(name="tiny-b", agents=5))
    return d


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_sweep_runs_the_grid_in_processes_and_writes_csv_table_and_plots(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    r = CliRunner().invoke(
        app,
        [
            "sim",
            "sweep",
            "--policies",
            "predictive,clairvoyant",
            "--scenarios",
            str(scenarios(tmp_path)),
            "--seeds",
            "2",
            "--targets",
            "2.5",
            "--jobs",
            "2",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    runs = read_csv(out / "runs.csv")
    assert len(runs) == 2 * 2 * 2  # scenarios x policies x seeds
    assert set(runs[0]) == set(sw.RUN_FIELDS)
    assert {r["policy"] for r in runs} == {"predictive", "clairvoyant"}
    assert {r["seed"] for r in runs} == {"1", "2"}
    assert {float(r["target_pct"]) for r in runs} == {2.5}
    for row in runs:
        assert 0.0 < float(row["occupancy"]) <= 1.0
        assert 0.0 <= float(row["abandon_rate"]) <= 1.0
        assert float(row["dials_per_hour"]) > 0
        assert float(row["talk_min_per_agent_hour"]) <= 60.0
    # the bound is on top: clairvoyant's occupancy is at least progressive's, seed by seed
    occ = {
        (r["scenario"], r["policy"], r["seed"], r["target_pct"]): float(r["occupancy"])
        for r in runs
    }
    for (scen, pol, seed, target), v in occ.items():
        if pol == "predictive":
            assert occ[(scen, "clairvoyant", seed, target)] >= v
    summary = read_csv(out / "summary.csv")
    assert len(summary) == 2 * 2
    clair = [s for s in summary if s["policy"] == "clairvoyant"]
    assert all(float(s["of_bound"]) == pytest.approx(1.0) for s in clair)
    md = (out / "summary.md").read_text()
    assert "| tiny-a | 3 | predictive | 2.5 | 2 |" in md
    assert "95% confidence" in md
    for png in ("pacing_curve.png", "abandon_over_shift.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    series = read_csv(out / "series.csv")
    assert {s["policy"] for s in series} == {"predictive", "clairvoyant"}
    # samples cover the shift, not the calls finishing after it
    assert max(float(s["hour"]) for s in series) == pytest.approx(0.15, abs=0.034)


def test_a_run_is_a_pure_function_of_its_spec_and_parameters_are_swept(tmp_path: Path) -> None:
    found = sw.find_scenarios([scenarios(tmp_path) / "a.toml"])
    params = sw.parse_params(["predictive.min_gain=0.05,0.5"], ["predictive"])
    grid = sw.build_grid(found, ["predictive"], [4], [None], params, hours=0.1)
    assert [g.label for g in grid] == ["predictive[min_gain=0.05]", "predictive[min_gain=0.5]"]
    assert grid[0].target_pct == 3.0  # the scenario's own target
    targets = sw.build_grid(found, ["predictive", "power"], [1, 2], sw.parse_targets("1,2,5"))
    assert len(targets) == 2 * 2 * 3
    assert sorted({g.target_pct for g in targets}) == [1.0, 2.0, 5.0]
    a, series = sw.run_one(grid[0])
    b, _ = sw.run_one(grid[0])
    strip = lambda d: {k: v for k, v in d.items() if k != "wall_seconds"}  # noqa: E731
    assert strip(a) == strip(b)
    assert a["params"] == "min_gain=0.05"
    assert series[-1][2] == a["live_answers"]  # the series ends at the run's totals
    res = sw.run_grid(grid, jobs=1)
    assert [r["policy"] for r in res.runs] == [g.label for g in grid]


def test_swept_parameters_are_labelled_in_the_printed_table(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "sim",
            "sweep",
            "--policies",
            "predictive",
            "--param",
            "predictive.min_gain=0.05,0.5",
            "--scenarios",
            str(scenarios(tmp_path) / "a.toml"),
            "--seeds",
            "1",
            "--hours",
            "0.05",
            "--jobs",
            "1",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "| predictive[min_gain=0.05] |" in r.stdout
    assert "| predictive[min_gain=0.5] |" in r.stdout
    assert len(read_csv(tmp_path / "o" / "runs.csv")) == 2


def test_confidence_interval() -> None:
    m, half = sw.ci95([1.0, 2.0, 3.0])
    assert m == 2.0
    assert half == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert math.isnan(sw.ci95([5.0])[1])


def test_agent_hours_size_the_shift() -> None:
    sc = load_scenario(ROOT / "config/scenarios/research/r005-small.toml")
    big = load_scenario(ROOT / "config/scenarios/research/r500-floor.toml")
    assert sw.shift_hours(sc, None, 100.0) == sc.shift_hours  # capped at the scenario's
    assert sw.shift_hours(big, None, 100.0) == sw.MIN_HOURS
    assert sw.shift_hours(big, 2.0, None) == 2.0
    lunch = load_scenario(ROOT / "config/scenarios/research/r020-lunch.toml")
    assert sw.shift_hours(lunch, None, 1.0) == 2.25  # the lunchtime dip stays in the shift


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "predictive,warp-drive"], "unknown policy 'warp-drive'"),
        (["--policies", "predictive,predictive"], "named twice"),
        (["--scenarios", "/nonexistent/dir"], "no such file or directory"),
        (["--seeds", "0"], "--seeds"),
        (["--targets", "2,abc"], "'abc' is not a number"),
        (["--targets", "150"], "outside 0..100"),
        (["--param", "predictive.min_gain"], "POLICY.NAME=v1,v2"),
        (["--param", "power.ratio=2"], "not in --policies"),
        (["--param", "predictive.warp=1"], "unknown predictive parameter(s) ['warp']"),
        (["--hours", "1", "--agent-hours", "50"], "not both"),
        (["--hours", "30"], "outside (0, 24]"),
        (["--jobs", "0"], "--jobs"),
    ],
)
def test_bad_arguments_get_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    base = ["sim", "sweep", "--scenarios", str(scenarios(tmp_path)), "--out", str(tmp_path / "o")]
    if "--policies" not in args:
        base += ["--policies", "predictive"]
    r = CliRunner().invoke(app, [*base, *args])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not (tmp_path / "o").exists()


def test_empty_directory_and_invalid_scenario_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(app, ["sim", "sweep", "--scenarios", str(empty)])
    assert r.exit_code == 2
    assert "holds no .toml" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.format(name="x", agents=3).replace("answer_rate = 0.45", "answer_rate = 2"))
    r = CliRunner().invoke(app, ["sim", "sweep", "--scenarios", str(bad)])
    assert r.exit_code == 2
    assert "called_party.answer_rate" in r.output


RESEARCH = sorted((ROOT / "config/scenarios/research").glob("*.toml"))


def test_research_set_covers_what_the_issue_asks() -> None:
    scs = [load_scenario(p) for p in RESEARCH]
    assert {s.agents.count for s in scs} >= {5, 20, 100, 500}
    live = [s.called_party.answer_rate * (1 - s.called_party.machine_share) for s in scs]
    assert min(live) <= 0.11 and max(live) >= 0.55
    talk = [s.called_party.talk.mean for s in scs]
    assert min(talk) <= 60 and max(talk) >= 300
    assert all(s.called_party.talk.sd > s.called_party.talk.mean for s in scs)  # heavy tails
    machines = [s.called_party.machine_share for s in scs]
    assert min(machines) <= 0.1 and max(machines) >= 0.5
    assert any(ch.answer_rate_factor == 0.5 for s in scs for ch in s.called_party.changes)
    assert len({s.name for s in scs}) == len(scs)


@pytest.mark.parametrize("path", RESEARCH, ids=[p.stem for p in RESEARCH])
def test_each_research_scenario_runs(path: Path) -> None:
    import asyncio

    from sim.runner import SimOptions, run_scenario

    # a short list: building a list of hundreds of thousands costs seconds
    sc = load_scenario(path).model_copy(update={"audio": "synthetic", "list_size": 20_000})
    hours = 0.03 if sc.agents.count >= 100 else 0.1
    s = asyncio.run(run_scenario(sc, SimOptions(policy="predictive", hours=hours))).summary
    assert s["dials"] > sc.agents.count  # it dialled beyond one call per agent
    assert s["connects"] > 0
    assert 0 < s["occupancy"] <= 1


def test_a_failing_run_is_named(tmp_path: Path) -> None:
    path = scenarios(tmp_path) / "a.toml"
    grid = sw.build_grid(sw.find_scenarios([path]), ["predictive"], [1], [None], hours=0.05)
    path.unlink()  # gone by the time the run starts
    with pytest.raises(sw.RunFailed, match="run tiny-a / predictive / seed 1 / target 3 %"):
        sw.run_grid(grid, jobs=1)
