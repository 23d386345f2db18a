"""`dialer dnc`: DNC and suppression lists."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import typer

from dialer.cli.common import err, out, with_db
from dialer.clock import system_wall_clock
from dialer.contacts import decode_bytes, normalise_entry, normalise_number
from dialer.store import dnc_repo
from dialer.store.db import Database

app = typer.Typer(help="DNC and suppression lists.", no_args_is_help=True)


def _when(text: str | None, what: str) -> datetime | None:
    if not text:
        return None
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an ISO date or time") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


@app.command("add")
def add(
    list_name: str,
    value: str,
    expires: str = typer.Option(None, help="ISO date/time the entry stops applying."),
    reason: str = typer.Option("", help="Why (shown in reports)."),
    region: str = typer.Option("US"),
    campaign: list[str] = typer.Option(None, help="Attach a new list to these campaigns."),
    optional: bool = typer.Option(False, help="A new list is optional (campaigns may ignore it)."),
) -> None:
    """Add a number, a prefix (+1212*) or an e-mail address to a list."""
    try:
        entry = normalise_entry(value, region)
        exp = _when(expires, "--expires")
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None

    async def go(db: Database) -> None:
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            lid = await dnc_repo.ensure_list(conn, list_name, now, campaign or [], not optional)
            await dnc_repo.add_entries(conn, lid, [dnc_repo.EntryIn(entry, exp, reason)], now)

    with_db(go)
    out.print(
        f"{list_name}: added {entry}" + (f" until {exp.isoformat()}" if exp else ""), markup=False
    )


@app.command("remove")
def remove(list_name: str, value: str, region: str = typer.Option("US")) -> None:
    try:
        entry = normalise_entry(value, region)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None

    async def go(db: Database) -> bool:
        async with db.engine.begin() as conn:
            lid = await dnc_repo.list_id(conn, list_name)
            return lid is not None and await dnc_repo.remove_entry(conn, lid, entry)

    if not with_db(go):
        err.print(f"error: {entry} is not on list {list_name!r}", markup=False)
        raise typer.Exit(1)
    out.print(f"{list_name}: removed {entry}", markup=False)


@app.command("import")
def import_list(
    file: Path,
    list_name: str = typer.Option(..., "--list"),
    region: str = typer.Option("US"),
) -> None:
    """Import a CSV with a column `number` (or `phone`, `prefix`, `email`) and optional
    `expires_at`, `reason`.  Bad rows are reported by line; good rows are kept."""
    try:
        text, _ = decode_bytes(file.read_bytes())
    except OSError as exc:
        err.print(f"error: {file}: cannot read: {exc.strerror}", markup=False)
        raise typer.Exit(1) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    cols = [c for c in ("number", "phone", "prefix", "email", "value") if c in fields]
    if not cols:
        err.print(f"error: {file}: no number/phone/prefix/email column in {fields}", markup=False)
        raise typer.Exit(1)
    good: list[dnc_repo.EntryIn] = []
    problems: list[str] = []
    for row in reader:
        low = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        raw = next((low[c] for c in cols if low.get(c)), "")
        line = reader.line_num
        try:
            if not raw:
                raise ValueError("no value")
            good.append(
                dnc_repo.EntryIn(
                    normalise_entry(raw, region),
                    _when(low.get("expires_at"), "expires_at"),
                    low.get("reason", ""),
                    "import",
                )
            )
        except ValueError as exc:
            problems.append(f"{file}: line {line}: rejected: {exc}")

    async def go(db: Database) -> int:
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            lid = await dnc_repo.ensure_list(conn, list_name, now)
            return await dnc_repo.add_entries(conn, lid, good, now)

    n = with_db(go)
    for p in problems[:50]:
        err.print(p, markup=False)
    out.print(f"{list_name}: {n} entries imported, {len(problems)} rows rejected", markup=False)


@app.command("export")
def export(list_name: str = typer.Option(..., "--list"), file: Path = typer.Argument(...)) -> None:
    async def go(db: Database) -> list[dict[str, object]] | None:
        async with db.engine.connect() as conn:
            lid = await dnc_repo.list_id(conn, list_name)
            return None if lid is None else await dnc_repo.export_rows(conn, lid)

    rows = with_db(go)
    if rows is None:
        err.print(f"error: no list named {list_name!r}", markup=False)
        raise typer.Exit(1)
    with file.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["value", "expires_at", "reason", "source", "added_by", "created_at"])
        for r in rows:
            w.writerow(
                [
                    r["value"],
                    r["expires_at"] or "",
                    r["reason"],
                    r["source"],
                    r["added_by"],
                    r["created_at"],
                ]
            )
    out.print(f"{list_name}: {len(rows)} entries written to {file}", markup=False)


@app.command("check")
def check(
    number: str,
    campaign: str = typer.Option(None, help="Also apply lists attached to this campaign."),
    region: str = typer.Option("US"),
) -> None:
    """Exit 0 when no list blocks the number, 1 when one does (naming it and the
    entry's expiry)."""
    try:
        e164 = normalise_number(number, region)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None

    async def go(db: Database) -> list[str]:
        async with db.engine.connect() as conn:
            idx = await dnc_repo.load_index(conn)
        return [
            f"blocked by list {m.list_name!r} (entry {m.entry}, "
            f"{'expires ' + m.expires_at.isoformat() if m.expires_at else 'no expiry'})"
            for m in idx.check(e164, campaign, system_wall_clock())
        ]

    blocks = with_db(go)
    if blocks:
        for b in blocks:
            out.print(f"{e164}: {b}", markup=False)
        raise typer.Exit(1)
    out.print(f"{e164}: not on any DNC list", markup=False)
