"""`dialer report`: campaign reports from the stored events, as tables or CSV."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.table import Table

from dialer import reports as R
from dialer.cli.common import err, out, with_db
from dialer.store.db import Database

app = typer.Typer(help="Campaign reports built from the stored events.", no_args_is_help=True)
T = TypeVar("T")

CAMPAIGN = typer.Option(..., "--campaign", "-c", help="Campaign name.")
SINCE = typer.Option(None, "--since", help="From this time (ISO date/time; UTC if no offset).")
UNTIL = typer.Option(None, "--until", help="Before this time (ISO date/time; UTC if no offset).")
CSV = typer.Option(None, "--csv", help="Also write the rows to this CSV file.")


Range = tuple[datetime | None, datetime | None]


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(2)


def _range(since: str | None, until: str | None) -> Range:
    try:
        s = R.parse_time(since, "--since") if since else None
        u = R.parse_time(until, "--until") if until else None
        R.Period.of(s, u)
    except R.ReportError as exc:
        raise _fail(str(exc)) from None
    return s, u


def _query(fn: Callable[[Any], Awaitable[T]]) -> T:
    async def go(db: Database) -> T:
        async with db.engine.connect() as conn:
            return await fn(conn)

    try:
        return with_db(go)
    except R.ReportError as exc:
        raise _fail(str(exc)) from None


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="left" if c in _TEXT_COLUMNS else "right", overflow="fold")
    for r in rows:
        t.add_row(*(_fmt(r.get(c)) for c in columns))
    out.print(t)


_TEXT_COLUMNS = {
    "start",
    "end",
    "window",
    "agent",
    "disposition",
    "reason",
    "call_id",
    "number",
    "started_at",
    "ended_at",
    "abandoned_at",
    "first_at",
    "last_at",
    "state",
    "result",
    "amd_label",
    "amd_cause",
    "dispositions",
    "metric",
    "value",
}


def _csv(path: Path | None, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if path is None:
        return
    try:
        n = R.write_csv_file(rows, path, columns)
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}") from None
    err.print(f"wrote {n} rows to {path}", markup=False, highlight=False)


FIGURES = (
    "dials",
    "contacts",
    "connects",
    "abandons",
    "machines",
    "contacts_per_dial",
    "abandons_per_dial",
    "abandons_per_contact",
)


@app.command()
def summary(
    campaign: str = CAMPAIGN,
    since: str = SINCE,
    until: str = UNTIL,
    csv: Path = CSV,
) -> None:
    """Totals: dials, contacts (live answers), connects, abandons, machines, ratios."""
    rng = _range(since, until)
    s = _query(lambda conn: R.summary(conn, campaign, *rng))
    d = s.as_dict()
    rows = [{"metric": k, "value": d[k]} for k in FIGURES]
    rows += [{"metric": f"result:{k}", "value": v} for k, v in s.results.items()]
    _table(f"campaign {s.campaign}", rows, ["metric", "value"])
    _csv(csv, [d], FIGURES)


@app.command()
def intervals(
    campaign: str = CAMPAIGN,
    interval: str = typer.Option("30m", "--interval", "-i", help="15m, 30m, 1h, 1d, ..."),
    tz: str = typer.Option(
        None, "--tz", help="Align buckets and days to this zone (e.g. America/New_York)."
    ),
    since: str = SINCE,
    until: str = UNTIL,
    csv: Path = CSV,
) -> None:
    """The same figures per interval (or per day with --interval 1d)."""
    try:
        seconds = R.parse_interval(interval)
        R.zone_of(tz)
    except R.ReportError as exc:
        raise _fail(str(exc)) from None
    rng = _range(since, until)
    rows = [r.as_dict() for r in _query(lambda c: R.intervals(c, campaign, seconds, *rng, tz=tz))]
    cols = ["start", *FIGURES]
    _table(f"campaign {campaign} per {interval} ({tz or 'UTC'})", rows, cols)
    _csv(csv, rows, ["start", "end", *FIGURES])


@app.command()
def abandonment(
    campaign: str = CAMPAIGN,
    as_of: str = typer.Option(
        None, "--as-of", help="End of the windows: ISO time, or 'last' (the last dial); now."
    ),
    since: str = SINCE,
    until: str = UNTIL,
    limit: int = typer.Option(50, "--limit", help="Abandoned calls to list (CSV: all)."),
    csv: Path = CSV,
) -> None:
    """The abandon rate explained: windows with numerator and denominator, the
    AMD false-positive term, and the abandoned calls themselves."""
    rng = _range(since, until)
    end: datetime | None = None
    if as_of and as_of.strip().lower() != "last":
        try:
            end = R.parse_time(as_of, "--as-of")
        except R.ReportError as exc:
            raise _fail(str(exc)) from None

    async def go(conn: Any) -> R.Abandonment:
        at = end
        if as_of and as_of.strip().lower() == "last":
            at = await R.last_activity(conn, campaign)
        cap = 10**9 if csv is not None else limit
        return await R.abandonment(conn, campaign, at, since=rng[0], until=rng[1], limit=cap)

    a = _query(go)
    out.print(a.definition, highlight=False)
    out.print(f"target {a.target:.2%}   AMD false-positive rate {a.fp_rate:.2%}", highlight=False)
    wcols = ["window", "start", "end", "numerator", "denominator", "rate"]
    if a.fp_rate:
        wcols += ["fp_term", "rate_with_fp"]
    _table(f"abandonment, {a.campaign}", [w.as_dict() for w in a.windows], wcols)
    calls = [c.as_dict() for c in a.calls]
    ccols = ["call_id", "contact_id", "number", "started_at", "abandoned_at", "waited_s"]
    _table(f"abandoned calls ({a.calls_total} in range)", calls[:limit], ccols)
    _csv(csv, calls, ccols)


@app.command()
def attempts(
    campaign: str = typer.Option(None, "--campaign", "-c", help="Campaign name (default: all)."),
    since: str = SINCE,
    until: str = UNTIL,
    contact: int = typer.Option(None, "--contact", help="Only this contact id."),
    limit: int = typer.Option(100, "--limit", help="Rows to print (CSV: all)."),
    csv: Path = CSV,
) -> None:
    """Every attempt with its result, times, AMD verdict, agent and disposition."""
    rng = _range(since, until)
    cap = None if csv is not None else limit
    rows = _query(lambda c: R.attempt_history(c, campaign, *rng, contact, limit=cap))
    cols = ["call_id", "contact_id", "number", "started_at", "result", "amd_label", "agent"]
    _table(
        f"attempts, {campaign or 'all campaigns'} ({len(rows)} rows)",
        rows[:limit],
        [*cols, "disposition"],
    )
    _csv(csv, rows, R.ATTEMPT_COLUMNS)


AGENT_COLUMNS = (
    "agent",
    "calls",
    "talk_s",
    "wrap_s",
    "idle_s",
    "paused_s",
    "reserved_s",
    "logged_in_s",
    "occupancy",
)


@app.command()
def agents(
    campaign: str = CAMPAIGN,
    since: str = SINCE,
    until: str = UNTIL,
    csv: Path = CSV,
) -> None:
    """Per agent: talk, wrap-up, idle, paused and reserved time; calls; dispositions."""
    rng = _range(since, until)
    rows = [r.as_dict() for r in _query(lambda c: R.agent_performance(c, campaign, *rng))]
    _table(f"agents, {campaign}", rows, [*AGENT_COLUMNS, "dispositions"])
    flat = [{**r, "dispositions": _fmt(r["dispositions"])} for r in rows]
    _csv(csv, flat, [*AGENT_COLUMNS, "dispositions"])


@app.command()
def dispositions(
    campaign: str = CAMPAIGN,
    since: str = SINCE,
    until: str = UNTIL,
    csv: Path = CSV,
) -> None:
    """Connected calls by the disposition the agent chose."""
    rng = _range(since, until)
    rows = _query(lambda c: R.dispositions(c, campaign, *rng))
    cols = ["disposition", "calls", "share"]
    _table(f"dispositions, {campaign}", rows, cols)
    _csv(csv, rows, cols)


@app.command()
def refusals(
    campaign: str = CAMPAIGN,
    since: str = SINCE,
    until: str = UNTIL,
    csv: Path = CSV,
) -> None:
    """Why the dial gate said no, by reason."""
    rng = _range(since, until)
    rows = _query(lambda c: R.refusals(c, campaign, *rng))
    cols = ["reason", "refusals", "contacts", "share", "first_at", "last_at"]
    _table(f"gate refusals, {campaign}", rows, cols)
    _csv(csv, rows, cols)
