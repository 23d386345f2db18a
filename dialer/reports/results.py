"""Success results per campaign: totals, and the same figures per interval.

Definitions (all counted on ``attempts`` by when the dial started):
dials = attempts placed; contacts = live answers (a person, whether or not an
agent came); connects = calls bridged to an agent; abandons = live answers no
agent took in time; machines = answers classified machine or fax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from dialer.callstate import CallResult
from dialer.reports.common import (
    A,
    Period,
    bucket_start,
    find_campaign,
    from_epoch,
    parse_interval,
    ratio,
    zone_of,
)

MACHINE_RESULTS = (CallResult.MACHINE.value, CallResult.MESSAGE_LEFT.value, CallResult.FAX.value)


@dataclass(slots=True)
class Figures:
    dials: int = 0
    contacts: int = 0
    connects: int = 0
    abandons: int = 0
    machines: int = 0

    @property
    def contacts_per_dial(self) -> float:
        return ratio(self.contacts, self.dials)

    @property
    def abandons_per_dial(self) -> float:
        return ratio(self.abandons, self.dials)

    @property
    def abandons_per_contact(self) -> float:
        """The regulatory abandon rate (abandoned / live answers)."""
        return ratio(self.abandons, self.contacts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dials": self.dials,
            "contacts": self.contacts,
            "connects": self.connects,
            "abandons": self.abandons,
            "machines": self.machines,
            "contacts_per_dial": self.contacts_per_dial,
            "abandons_per_dial": self.abandons_per_dial,
            "abandons_per_contact": self.abandons_per_contact,
        }


@dataclass(slots=True)
class Summary:
    campaign: str
    since: datetime | None
    until: datetime | None
    figures: Figures
    results: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "since": self.since,
            "until": self.until,
            **self.figures.as_dict(),
            "results": dict(self.results),
        }


@dataclass(slots=True)
class IntervalRow:
    start: datetime
    end: datetime
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, **self.figures.as_dict()}


def _as_int(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(expr), 0)


def _figure_columns() -> list[ColumnElement[Any]]:
    return [
        func.count().label("dials"),
        _as_int(A.c.live.cast(Integer)).label("contacts"),
        _as_int(case((A.c.agent.is_not(None), 1), else_=0)).label("connects"),
        _as_int(A.c.abandoned.cast(Integer)).label("abandons"),
        _as_int(case((A.c.result.in_(MACHINE_RESULTS), 1), else_=0)).label("machines"),
    ]


def _figures(row: Any) -> Figures:
    return Figures(
        int(row.dials), int(row.contacts), int(row.connects), int(row.abandons), int(row.machines)
    )


async def summary(
    conn: AsyncConnection,
    campaign: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Summary:
    camp = await find_campaign(conn, campaign)
    period = Period.of(since, until)
    where = [A.c.campaign_id == camp.id, *period.where(A.c.started_at)]
    row = (await conn.execute(select(*_figure_columns()).where(*where))).one()
    results = {
        str(res or "open"): int(n)
        for res, n in await conn.execute(
            select(A.c.result, func.count()).where(*where).group_by(A.c.result)
        )
    }
    return Summary(
        camp.name, period.since, period.until, _figures(row), dict(sorted(results.items()))
    )


async def intervals(
    conn: AsyncConnection,
    campaign: str,
    interval: str | int = "30m",
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str | None = None,
) -> list[IntervalRow]:
    """The figures per interval ("1d" gives days).  Buckets are aligned in UTC,
    or on the local clock of ``tz`` (an IANA zone name: local midnights and
    hours, with 23- and 25-hour days at DST changes).  Only intervals with at
    least one dial are listed."""
    seconds = parse_interval(interval) if isinstance(interval, str) else int(interval)
    if seconds <= 0:
        raise ValueError(f"interval must be positive, got {seconds} s")
    zone = zone_of(tz)
    camp = await find_campaign(conn, campaign)
    period = Period.of(since, until)
    if zone is not None:
        # every UTC offset in use is a whole number of quarter hours and changes
        # on a quarter hour, so UTC buckets of gcd(interval, 15 min) never straddle
        # a change and regroup exactly into local buckets
        fine = await _buckets(conn, camp.id, period, math.gcd(seconds, 900))
        return _regroup(fine, seconds, zone)
    return await _buckets(conn, camp.id, period, seconds)


async def _buckets(
    conn: AsyncConnection, campaign_id: int, period: Period, seconds: int
) -> list[IntervalRow]:
    bucket = bucket_start(A.c.started_at, seconds, conn.dialect.name).label("bucket")
    q = (
        select(bucket, *_figure_columns())
        .where(A.c.campaign_id == campaign_id, *period.where(A.c.started_at))
        .group_by(bucket)
        .order_by(bucket)
    )
    rows = []
    for row in await conn.execute(q):
        start = from_epoch(int(row.bucket))
        rows.append(IntervalRow(start, from_epoch(int(row.bucket) + seconds), _figures(row)))
    return rows


_EPOCH = datetime(1970, 1, 1)


def _regroup(fine: list[IntervalRow], seconds: int, zone: ZoneInfo) -> list[IntervalRow]:
    merged: dict[datetime, Figures] = {}
    for row in fine:
        local = row.start.astimezone(zone).replace(tzinfo=None)
        k = (local - _EPOCH).total_seconds() // seconds * seconds
        key = _EPOCH + timedelta(seconds=k)
        f = merged.setdefault(key, Figures())
        for name in ("dials", "contacts", "connects", "abandons", "machines"):
            setattr(f, name, getattr(f, name) + getattr(row.figures, name))
    return [
        IntervalRow(
            key.replace(tzinfo=zone), (key + timedelta(seconds=seconds)).replace(tzinfo=zone), f
        )
        for key, f in sorted(merged.items())
    ]


__all__ = ["Figures", "IntervalRow", "Summary", "intervals", "summary"]
