"""Attempt history: every dial with how it ended, and its CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.reports.common import A, C, Period, find_campaign, maybe_utc

COLUMNS: tuple[str, ...] = (
    "campaign",
    "call_id",
    "contact_id",
    "number",
    "started_at",
    "ended_at",
    "state",
    "result",
    "live",
    "abandoned",
    "sip_status",
    "amd_label",
    "amd_cause",
    "amd_ms",
    "agent",
    "disposition",
    "ring_s",
    "talk_s",
    "connect_delay_s",
)


async def attempt_history(
    conn: AsyncConnection,
    campaign: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    contact_id: int | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Attempts in dial order (oldest first), one dict per attempt with ``COLUMNS``;
    ``campaign=None`` lists every campaign's."""
    period = Period.of(since, until)
    cols = [C.c.name.label("campaign"), *(A.c[name] for name in COLUMNS[1:])]
    q = (
        select(*cols)
        .select_from(A.join(C, A.c.campaign_id == C.c.id))
        .where(*period.where(A.c.started_at))
    )
    if campaign is not None:
        camp = await find_campaign(conn, campaign)
        q = q.where(A.c.campaign_id == camp.id)
    if contact_id is not None:
        q = q.where(A.c.contact_id == contact_id)
    q = q.order_by(A.c.started_at, A.c.id).offset(max(0, offset))
    if limit is not None:
        q = q.limit(max(0, limit))
    rows = []
    for r in await conn.execute(q):
        d = dict(r._mapping)
        d["started_at"] = maybe_utc(d["started_at"])
        d["ended_at"] = maybe_utc(d["ended_at"])
        d["live"] = bool(d["live"])
        d["abandoned"] = bool(d["abandoned"])
        rows.append(d)
    return rows


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO, columns: Iterable[str]) -> int:
    """Write dicts as CSV (ISO times, empty for missing); returns the row count."""
    cols = list(columns)
    w = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    n = 0
    for row in rows:
        w.writerow({c: _cell(row.get(c)) for c in cols})
        n += 1
    return n


def write_csv_file(rows: Iterable[dict[str, Any]], path: Path, columns: Iterable[str]) -> int:
    with path.open("w", newline="", encoding="utf-8") as f:
        return write_csv(rows, f, columns)
