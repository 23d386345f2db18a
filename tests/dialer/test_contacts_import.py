from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dialer.cli import app
from dialer.contacts import ContactFileError, ParsedContact, RowError, decode_bytes, parse_contacts
from dialer.store.db import Database
from dialer.store.models import Contact, PhoneNumber

GOOD = """id,name,phone,mobile,balance
1,Ann,(212) 555-0100,+44 20 7946 0958,12.50
2,Bob,2125550199,,0
"""


def parse(text: str, region: str = "US") -> tuple[list[ParsedContact], list[RowError]]:
    rows = list(parse_contacts(text, region))
    return (
        [r for r in rows if isinstance(r, ParsedContact)],
        [r for r in rows if isinstance(r, RowError)],
    )


def test_numbers_are_normalised_and_fields_kept() -> None:
    good, errors = parse(GOOD)
    assert errors == []
    assert [c.numbers for c in good] == [
        [("+12125550100", "phone"), ("+442079460958", "mobile")],
        [("+12125550199", "phone")],
    ]
    assert good[0].fields == {"id": "1", "name": "Ann", "balance": "12.50"}
    assert good[0].dedupe_key == "id:1"


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_kept() -> None:
    text = (
        "name,phone,phone2,timezone\n"
        "ok,2125550100,,America/New_York\n"
        "nonum,,,\n"
        "junk,hello,,\n"
        "short,2125550101\n"
        "badtz,2125550102,,Mars/Olympus\n"
        "partial,2125550103,12,\n"
        "dup,2125550100,,\n"
    )
    good, errors = parse(text)
    assert [c.fields["name"] for c in good] == ["ok", "partial"]
    msgs = {e.line: str(e) for e in errors}
    assert "no number" in msgs[3]
    assert "'hello' is not a phone number" in msgs[4]
    assert "has 2 columns, the header has 4" in msgs[5]
    assert "unknown time zone 'Mars/Olympus'" in msgs[6]
    assert "warning" in msgs[7] and "phone2" in msgs[7]  # kept, second number dropped
    assert "duplicate of line 2" in msgs[8]
    assert all(e.fatal for e in errors if e.line != 7)


def test_file_level_errors_are_clear() -> None:
    with pytest.raises(ContactFileError, match="empty"):
        list(parse_contacts("", "US"))
    with pytest.raises(ContactFileError, match="no phone column"):
        list(parse_contacts("name,email\nA,a@b.c\n", "US"))
    with pytest.raises(ContactFileError, match="duplicate column"):
        list(parse_contacts("phone,Phone\n1,2\n", "US"))


def test_encodings_utf8_bom_and_latin1() -> None:
    text = "name,phone\nJosé Müller,2125550100\n"
    bom, enc = decode_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert enc == "utf-8-sig" and bom.startswith("name")
    latin, enc2 = decode_bytes(text.encode("latin-1"))
    assert enc2 == "latin-1"
    for decoded in (bom, latin):
        good, errors = parse(decoded)
        assert errors == [] and good[0].fields["name"] == "José Müller"


def test_default_region_applies_to_national_numbers() -> None:
    good, _ = parse("phone\n020 7946 0958\n", region="GB")
    assert good[0].numbers[0][0] == "+442079460958"


async def _counts(url: str) -> tuple[int, int]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            c = (await conn.execute(select(func.count()).select_from(Contact))).scalar_one()
            n = (await conn.execute(select(func.count()).select_from(PhoneNumber))).scalar_one()
            return int(c), int(n)
    finally:
        await db.close()


def test_cli_import_reports_errors_and_reimport_does_not_duplicate(
    tmp_path: Path, sqlite_url: str
) -> None:
    f = tmp_path / "list.csv"
    f.write_bytes(
        b"\xef\xbb\xbfid,name,phone,phone2\n1,A,2125550100,\n2,B,nope,\n3,C,2125550101,2125550102\n"
    )
    runner = CliRunner()
    r1 = runner.invoke(app, ["--db", sqlite_url, "contacts", "import", str(f), "--list", "L"])
    assert r1.exit_code == 0, r1.output
    assert "2 added" in r1.stdout and "1 rows rejected" in r1.stdout
    assert "line 3: rejected: column 'phone': 'nope' is not a phone number" in r1.stderr
    assert asyncio.run(_counts(sqlite_url)) == (2, 3)
    r2 = runner.invoke(app, ["--db", sqlite_url, "contacts", "import", str(f), "--list", "L"])
    assert r2.exit_code == 0
    assert "0 added" in r2.stdout and "2 unchanged" in r2.stdout
    assert asyncio.run(_counts(sqlite_url)) == (2, 3)
    # a later file adds a number to a known contact: merged, not duplicated
    f.write_text("id,name,phone,phone2\n1,A,2125550100,2125550199\n")
    r3 = runner.invoke(app, ["--db", sqlite_url, "contacts", "import", str(f), "--list", "L"])
    assert "1 updated" in r3.stdout
    assert asyncio.run(_counts(sqlite_url)) == (2, 4)


def test_cli_import_unreadable_file(tmp_path: Path, sqlite_url: str) -> None:
    r = CliRunner().invoke(
        app,
        ["--db", sqlite_url, "contacts", "import", str(tmp_path / "missing.csv"), "--list", "L"],
    )
    assert r.exit_code == 1
    assert "cannot read" in r.stderr


def test_large_import_keeps_every_good_row(tmp_path: Path, sqlite_url: str) -> None:
    lines = ["id,phone"] + [f"{i},+1212{200 + i // 10000:03d}{i % 10000:04d}" for i in range(5000)]
    lines.insert(100, "bad,not-a-number")
    f = tmp_path / "big.csv"
    f.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["--db", sqlite_url, "contacts", "import", str(f), "--list", "B"])
    assert r.exit_code == 0, r.output
    assert "5000 added" in r.stdout and "1 rows rejected" in r.stdout
    assert "line 101" in r.stderr
    assert asyncio.run(_counts(sqlite_url)) == (5000, 5000)


def test_contact_history_lists_attempts_and_events_in_order(tmp_path: Path) -> None:
    import json

    from sim.runner import SimOptions, run_scenario
    from sim.scenario import parse_scenario

    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"

    async def fill() -> None:
        db = Database(url)
        try:
            sc = parse_scenario(
                'name = "h"\nshift_hours = 0.3\nlist_size = 50\nstart = 2026-03-02T18:00:00Z\n'
                "[agents]\ncount = 3\n"
                "[called_party]\nanswer_rate = 0.5\n"
            )
            await run_scenario(sc, SimOptions(seed=1, db=db))
        finally:
            await db.close()

    asyncio.run(fill())
    r = CliRunner().invoke(
        app, ["--db", url, "contacts", "history", "1", "--json", "--csv", str(tmp_path / "h.csv")]
    )
    assert r.exit_code == 0, r.output
    h = json.loads(r.stdout)
    kinds = [e["kind"] for e in h["timeline"]]
    assert "attempt" in kinds and "event" in kinds
    times = [e["at"] for e in h["timeline"]]
    assert times == sorted(times)
    # each call's events come after its attempt started
    first_attempt = kinds.index("attempt")
    assert "event" not in kinds[:first_attempt]
    attempts = [e for e in h["timeline"] if e["kind"] == "attempt"]
    assert all(a["number"] in h["numbers"] for a in attempts)
    assert (tmp_path / "h.csv").read_text().startswith("at,kind,")
    bad = CliRunner().invoke(app, ["--db", url, "contacts", "history", "999999"])
    assert bad.exit_code == 1 and "no contact with id 999999" in bad.stderr
