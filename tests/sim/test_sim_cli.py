from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dialer.cli import app
from tests.conftest import ROOT

SMALL = """
name = "tiny"
seed = 3
shift_hours = 0.5
list_size = 600
[agents]
count = 5
[called_party]
answer_rate = 0.4
machine_share = 0.3
"""
KEYS = {
    "dials",
    "live_answers",
    "machine_answers",
    "connects",
    "abandoned",
    "abandon_rate",
    "occupancy",
    "agent_wait_mean_s",
    "sim_seconds",
    "wall_seconds",
    "policy",
    "seed",
}


def run_json(args: list[str]) -> dict[str, object]:
    r = CliRunner().invoke(app, ["sim", "run", *args, "--json"])
    assert r.exit_code == 0, r.output
    out: dict[str, object] = json.loads(r.stdout)
    return out


def test_sim_run_json_has_the_documented_keys_and_is_deterministic(tmp_path: Path) -> None:
    sc = tmp_path / "tiny.toml"
    sc.write_text(SMALL)
    a = run_json([str(sc), "--seed", "9"])
    b = run_json([str(sc), "--seed", "9"])
    c = run_json([str(sc), "--seed", "10"])
    assert set(a) >= KEYS
    strip = lambda d: {k: v for k, v in d.items() if k != "wall_seconds"}  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)
    assert a["seed"] == 9
    assert a["abandon_rate"] == (a["abandoned"] / a["live_answers"] if a["live_answers"] else 0.0)
    assert 0 < float(a["occupancy"]) <= 1  # type: ignore[arg-type]
    assert a["dials"] > 0


def test_overrides_apply(tmp_path: Path) -> None:
    sc = tmp_path / "tiny.toml"
    sc.write_text(SMALL)
    r = run_json([str(sc), "--agents", "2", "--policy", "progressive", "--abandon-target", "1"])
    assert r["policy"] == "progressive"
    assert r["abandon_target"] == 0.01
    # progressive dials one line per free agent: it can abandon only when a person
    # hangs up while classified, never for lack of an agent beyond that
    assert r["abandoned"] <= r["live_answers"]


def test_invalid_scenario_names_the_key(tmp_path: Path) -> None:
    sc = tmp_path / "bad.toml"
    sc.write_text(
        SMALL.replace("answer_rate = 0.4", "answer_rate = 1.7").replace(
            "count = 5", "count = 5\ncolour = 'red'"
        )
    )
    r = CliRunner().invoke(app, ["sim", "run", str(sc), "--json"])
    assert r.exit_code == 2
    assert "called_party.answer_rate" in r.stderr
    assert "agents.colour: unknown key" in r.stderr
    sc.write_text("name = [")
    r = CliRunner().invoke(app, ["sim", "run", str(sc)])
    assert r.exit_code == 2 and "not valid TOML" in r.stderr


def test_shipped_scenarios_are_valid() -> None:
    from sim.scenario import load_scenario

    files = sorted((ROOT / "config" / "scenarios").glob("*.toml"))
    assert len(files) >= 4
    teams = set()
    for f in files:
        teams.add(load_scenario(f).agents.count)
    assert {10, 50, 200} <= teams
