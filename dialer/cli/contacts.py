"""`dialer contacts`: import contact lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dialer.cli.common import err, out, with_db
from dialer.clock import system_wall_clock
from dialer.contacts import (
    ContactFileError,
    ParsedContact,
    RowError,
    parse_contacts,
    read_contact_file,
)
from dialer.store import repo
from dialer.store.db import Database

app = typer.Typer(help="Contact lists.", no_args_is_help=True)
BATCH = 2000


@app.command("import")
def import_contacts(
    file: Path = typer.Argument(..., help="CSV file with a header row."),
    list_name: str = typer.Option(..., "--list", help="Name of the list to import into."),
    region: str = typer.Option("US", help="Default region for numbers without a country code."),
    phone_column: list[str] = typer.Option(
        None, "--phone-column", help="Phone column(s), in dialling order (default: detected)."
    ),
    errors_csv: Path = typer.Option(None, help="Also write rejected rows' line and reason here."),
) -> None:
    """Import contacts: numbers normalised to E.164, extra columns kept as fields.

    Bad rows are reported with their line number and reason; good rows are kept.
    Importing the same file again adds nothing twice."""
    try:
        text, encoding = read_contact_file(file)
        rows = list(parse_contacts(text, region, phone_column or None))
    except ContactFileError as exc:
        err.print(f"error: {file}: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    good = [r for r in rows if isinstance(r, ParsedContact)]
    problems = [r for r in rows if isinstance(r, RowError)]

    async def go(db: Database) -> repo.ImportSummary:
        total = repo.ImportSummary()
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            list_id = await repo.ensure_list(conn, list_name, region, now)
            with Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
                disable=len(good) < BATCH,
            ) as bar:
                task = bar.add_task("import", total=len(good))
                for i in range(0, len(good), BATCH):
                    s = await repo.store_contacts(conn, list_id, good[i : i + BATCH], now)
                    total.added += s.added
                    total.updated += s.updated
                    total.unchanged += s.unchanged
                    total.numbers_added += s.numbers_added
                    bar.advance(task, len(good[i : i + BATCH]))
        return total

    summary = with_db(go)
    rejected = [p for p in problems if p.fatal]
    for p in problems[:50]:
        err.print(f"{file}: {p}", markup=False, highlight=False)
    if len(problems) > 50:
        err.print(f"... and {len(problems) - 50} more (use --errors-csv)")
    if errors_csv is not None:
        with errors_csv.open("w", encoding="utf-8") as fh:
            fh.write("line,kind,reason\n")
            for p in problems:
                reason = p.reason.replace('"', '""')
                fh.write(f'{p.line},{"rejected" if p.fatal else "warning"},"{reason}"\n')
    out.print(
        f"list {list_name} ({encoding.removesuffix('-sig')}): {summary.added} added, "
        f"{summary.updated} updated, {summary.unchanged} unchanged, "
        f"{summary.numbers_added} numbers added, {len(rejected)} rows rejected, "
        f"{len(problems) - len(rejected)} warnings",
        markup=False,
        highlight=False,
    )


@app.command("history")
def history(
    contact_id: int,
    json_out: bool = typer.Option(False, "--json", help="The whole history as JSON."),
    csv_out: Path = typer.Option(None, "--csv", help="Also write the timeline as CSV."),
) -> None:
    """A contact's audit trail: attempts, call-state events, gate refusals,
    dispositions, callbacks and opt-outs, in time order."""

    async def go(db: Database) -> dict[str, Any] | None:
        async with db.engine.connect() as conn:
            return await repo.contact_history(conn, contact_id)

    h = with_db(go)
    if h is None:
        err.print(f"error: no contact with id {contact_id}", markup=False)
        raise typer.Exit(1)
    if csv_out is not None:
        import csv

        cols = [
            "at",
            "kind",
            "campaign",
            "call_id",
            "number",
            "result",
            "from",
            "to",
            "reason",
            "not_before",
            "agent",
            "disposition",
            "amd",
            "detail",
        ]
        with csv_out.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, cols, extrasaction="ignore")
            w.writeheader()
            for e in h["timeline"]:
                w.writerow({k: ("" if v is None else v) for k, v in e.items()})
    if json_out:
        import json

        typer.echo(json.dumps(h, default=str))
        return
    from rich.table import Table

    out.print(
        f"contact {contact_id}: numbers {', '.join(h['numbers'])}; fields {h['fields']}",
        markup=False,
    )
    t = Table(title="history")
    for col in ("at", "what", "call", "detail"):
        t.add_column(col)
    for e in h["timeline"]:
        if e["kind"] == "attempt":
            what = f"dial {e['number']} ({e['campaign']})"
            detail = f"{e['result'] or 'open'}" + (f", agent {e['agent']}" if e["agent"] else "")
            detail += f", disposition {e['disposition']}" if e["disposition"] else ""
        elif e["kind"] == "event":
            what, detail = f"{e['from']} -> {e['to']}", e["detail"]
        elif e["kind"] == "disposition":
            what = f"disposition {e['disposition']} ({e['campaign']})"
            detail = f"{e['agent'] or ''} {e['detail']}".strip()
        elif e["kind"] == "callback":
            what, detail = f"callback ({e['campaign']})", e["detail"]
        elif e["kind"] in ("opt_out", "dnc"):
            what, detail = f"{e['kind'].replace('_', '-')} {e['number']}", e["detail"]
        else:
            what = f"refused {e['number']} ({e['campaign']})"
            detail = f"{e['reason']}, not before {e['not_before'] or 'never'}"
        t.add_row(str(e["at"])[:23], what, e.get("call_id") or "", detail)
    out.print(t)
