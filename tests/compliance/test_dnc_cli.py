from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dialer.cli import app


def run(url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--db", url, "dnc", *args])


def test_add_check_remove_and_exit_codes(sqlite_url: str) -> None:
    r = run(sqlite_url, "check", "(212) 555-0100")
    assert r.exit_code == 0 and "not on any DNC list" in r.stdout
    assert run(sqlite_url, "add", "optouts", "212-555-0100", "--reason", "asked").exit_code == 0
    r = run(sqlite_url, "check", "+12125550100")
    assert r.exit_code == 1
    assert "blocked by list 'optouts'" in r.stdout and "no expiry" in r.stdout
    assert run(sqlite_url, "add", "temp", "+1312*", "--expires", "2999-01-01").exit_code == 0
    r = run(sqlite_url, "check", "+13125550199")
    assert r.exit_code == 1 and "expires 2999-01-01" in r.stdout and "+1312*" in r.stdout
    assert run(sqlite_url, "add", "past", "+14155550100", "--expires", "2001-01-01").exit_code == 0
    assert run(sqlite_url, "check", "+14155550100").exit_code == 0  # expired entry
    assert run(sqlite_url, "remove", "optouts", "+12125550100").exit_code == 0
    assert run(sqlite_url, "check", "+12125550100").exit_code == 0
    r = run(sqlite_url, "remove", "optouts", "+12125550100")
    assert r.exit_code == 1 and "is not on list" in r.stderr
    r = run(sqlite_url, "add", "x", "not a number")
    assert r.exit_code == 2 and "not a phone number" in r.stderr
    r = run(sqlite_url, "add", "x", "+1212555", "--expires", "soon")
    assert r.exit_code == 2


def test_campaign_scoped_list(sqlite_url: str) -> None:
    assert (
        run(sqlite_url, "add", "sales-only", "+12125550111", "--campaign", "sales").exit_code == 0
    )
    assert run(sqlite_url, "check", "+12125550111").exit_code == 0
    assert run(sqlite_url, "check", "+12125550111", "--campaign", "sales").exit_code == 1


def test_import_reports_bad_rows_and_export_round_trips(tmp_path: Path, sqlite_url: str) -> None:
    f = tmp_path / "dnc.csv"
    f.write_bytes(
        "number,expires_at,reason\n2125550100,,opt-out\nnonsense,,x\n+1312*,2999-01-01,area\n"
        "jo@example.com,,e-mail\n,,\n3125550100,tomorrow,x\n".encode("latin-1")
    )
    r = run(sqlite_url, "import", str(f), "--list", "imported")
    assert r.exit_code == 0, r.output
    assert "3 entries imported, 3 rows rejected" in r.stdout
    assert "line 3: rejected" in r.stderr and "line 7: rejected" in r.stderr
    out = tmp_path / "out.csv"
    assert run(sqlite_url, "export", "--list", "imported", str(out)).exit_code == 0
    text = out.read_text()
    assert "+12125550100" in text and "+1312*" in text and "jo@example.com" in text
    assert run(sqlite_url, "export", "--list", "nope", str(out)).exit_code == 1
