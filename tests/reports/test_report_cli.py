"""`dialer report ...` through the real command line on a simulated campaign."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialer.cli import app
from tests.reports.conftest import Filled


def run(filled: Filled, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["--db", filled.url, "report", *args])
    return r.exit_code, r.stdout, r.stderr


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_summary_prints_the_figures_and_writes_csv(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    code, stdout, _ = run(filled, "summary", "--campaign", "rep", "--csv", str(out))
    assert code == 0
    assert "abandons_per_contact" in stdout and str(filled.sim["dials"]) in stdout
    (row,) = read_csv(out)
    assert int(row["dials"]) == filled.sim["dials"]
    assert int(row["contacts"]) == filled.sim["live_answers"]
    assert int(row["abandons"]) == filled.sim["abandoned"]
    assert float(row["abandons_per_contact"]) == pytest.approx(filled.sim["abandon_rate"])


def test_intervals_csv_sums_to_the_totals(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "i.csv"
    code, _, _ = run(filled, "intervals", "-c", "rep", "--interval", "15m", "--csv", str(out))
    assert code == 0
    rows = read_csv(out)
    assert len(rows) >= 2
    assert sum(int(r["dials"]) for r in rows) == filled.sim["dials"]
    assert sum(int(r["abandons"]) for r in rows) == filled.sim["abandoned"]


def test_attempts_csv_round_trips_every_attempt(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "a.csv"
    code, _, _ = run(filled, "attempts", "-c", "rep", "--limit", "5", "--csv", str(out))
    assert code == 0
    rows = read_csv(out)
    assert len(rows) == filled.sim["dials"]  # the CSV has them all, the table 5
    assert sum(r["live"] == "True" for r in rows) == filled.sim["live_answers"]
    assert len({r["call_id"] for r in rows}) == len(rows)
    since, until = rows[10]["started_at"], rows[40]["started_at"]
    part = tmp_path / "p.csv"
    code, _, _ = run(
        filled, "attempts", "-c", "rep", "--since", since, "--until", until, "--csv", str(part)
    )
    assert code == 0
    assert [r["call_id"] for r in read_csv(part)] == [
        r["call_id"] for r in rows if since <= r["started_at"] < until
    ]
    every = tmp_path / "all.csv"
    assert run(filled, "attempts", "--csv", str(every))[0] == 0
    assert len(read_csv(every)) == filled.sim["dials"] + filled.other["dials"]
    contact = rows[0]["contact_id"]
    one = tmp_path / "c.csv"
    assert run(filled, "attempts", "-c", "rep", "--contact", contact, "--csv", str(one))[0] == 0
    assert {r["contact_id"] for r in read_csv(one)} == {contact}


def test_abandonment_agents_dispositions_refusals(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "ab.csv"
    code, stdout, _ = run(filled, "abandonment", "-c", "rep", "--as-of", "last", "--csv", str(out))
    assert code == 0
    assert "rolling_24h" in stdout and "live answers" in stdout
    assert len(read_csv(out)) == filled.sim["abandoned"]
    code, stdout, _ = run(filled, "agents", "-c", "rep", "--csv", str(tmp_path / "ag.csv"))
    assert code == 0 and "agents, rep" in stdout
    assert sum(int(r["calls"]) for r in read_csv(tmp_path / "ag.csv")) == filled.sim["connects"]
    code, stdout, _ = run(filled, "dispositions", "-c", "rep")
    assert code == 0 and "share" in stdout
    code, stdout, _ = run(filled, "refusals", "-c", "rep")
    assert code == 0 and "reason" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["summary", "-c", "nope"], "unknown campaign 'nope'"),
        (["intervals", "-c", "rep", "--interval", "banana"], "bad interval 'banana'"),
        (["intervals", "-c", "rep", "--interval", "7m"], "must divide a day"),
        (
            ["summary", "-c", "rep", "--since", "2026-03-02T15:00", "--until", "2026-03-02"],
            "is not before --until",
        ),
        (["attempts", "-c", "rep", "--since", "yesterday"], "bad --since 'yesterday'"),
        (["abandonment", "-c", "rep", "--as-of", "soon"], "bad --as-of 'soon'"),
    ],
)
def test_bad_arguments_fail_clearly(filled: Filled, args: list[str], message: str) -> None:
    code, _, stderr = run(filled, *args)
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr


def test_unwritable_csv_is_an_error_not_a_crash(filled: Filled, tmp_path: Path) -> None:
    code, _, stderr = run(filled, "summary", "-c", "rep", "--csv", str(tmp_path / "no" / "x.csv"))
    assert code == 2 and "cannot write" in stderr
