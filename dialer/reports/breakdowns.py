"""Counts by category: dispositions agents chose, and why the dial gate refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.reports.common import A, Period, find_campaign, maybe_utc, ratio
from dialer.store.models import GateRefusal, table_of

GR = table_of(GateRefusal)
NO_DISPOSITION = "(none)"


async def dispositions(
    conn: AsyncConnection,
    campaign: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Connected calls by disposition, most frequent first ("(none)" when the
    agent closed the call without one)."""
    camp = await find_campaign(conn, campaign)
    where = [
        A.c.campaign_id == camp.id,
        A.c.agent.is_not(None),
        *Period.of(since, until).where(A.c.started_at),
    ]
    q = select(A.c.disposition, func.count()).where(*where).group_by(A.c.disposition)
    counts = [(str(d) if d else NO_DISPOSITION, int(n)) for d, n in await conn.execute(q)]
    merged: dict[str, int] = {}
    for d, n in counts:
        merged[d] = merged.get(d, 0) + n  # NULL and '' are both "none"
    total = sum(merged.values())
    ordered = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"disposition": d, "calls": n, "share": ratio(n, total)} for d, n in ordered]


async def refusals(
    conn: AsyncConnection,
    campaign: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Gate refusals by reason, most frequent first, with how many contacts
    were affected and when it first and last happened."""
    camp = await find_campaign(conn, campaign)
    where = [GR.c.campaign_id == camp.id, *Period.of(since, until).where(GR.c.at)]
    q = (
        select(
            GR.c.reason,
            func.count().label("n"),
            func.count(func.distinct(GR.c.contact_id)).label("contacts"),
            func.min(GR.c.at).label("first"),
            func.max(GR.c.at).label("last"),
        )
        .where(*where)
        .group_by(GR.c.reason)
    )
    rows: list[dict[str, Any]] = [
        {
            "reason": str(r.reason),
            "refusals": int(r.n),
            "contacts": int(r.contacts),
            "first_at": maybe_utc(r.first),
            "last_at": maybe_utc(r.last),
        }
        for r in await conn.execute(q)
    ]
    total = sum(r["refusals"] for r in rows)
    for r in rows:
        r["share"] = ratio(r["refusals"], total)
    rows.sort(key=lambda r: (-r["refusals"], r["reason"]))
    return rows
