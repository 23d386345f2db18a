"""What every report shares: the campaign lookup, the time range, interval
strings, and the few SQL expressions that differ between SQLite and PostgreSQL.

Times are stored as UTC.  SQLite keeps them as text without an offset, so a
value read back naive is taken as UTC; buckets and days are UTC as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, Float, Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from dialer.store.models import Attempt, Campaign, table_of

A = table_of(Attempt)
C = table_of(Campaign)


class ReportError(ValueError):
    """A report was asked for with arguments that cannot be answered."""


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    id: int
    name: str
    abandon_target: float
    settings: dict[str, Any]
    created_at: datetime


async def find_campaign(conn: AsyncConnection, name: str) -> CampaignInfo:
    row = (
        await conn.execute(
            select(C.c.id, C.c.name, C.c.abandon_target, C.c.settings, C.c.created_at).where(
                C.c.name == name
            )
        )
    ).first()
    if row is None:
        known = [r[0] for r in await conn.execute(select(C.c.name).order_by(C.c.name).limit(20))]
        hint = f"; known campaigns: {', '.join(known)}" if known else "; there are no campaigns"
        raise ReportError(f"unknown campaign {name!r}{hint}")
    return CampaignInfo(
        int(row.id),
        str(row.name),
        float(row.abandon_target),
        dict(row.settings or {}),
        as_utc(row.created_at),
    )


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def maybe_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open time range [since, until); either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ReportError(
                f"--since {self.since.isoformat()} is not before --until {self.until.isoformat()}"
            )

    @staticmethod
    def of(since: datetime | None, until: datetime | None) -> Period:
        return Period(maybe_utc(since), maybe_utc(until))

    def where(self, column: Any) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.since is not None:
            conds.append(column >= self.since)
        if self.until is not None:
            conds.append(column < self.until)
        return conds


_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|hr|hour|d|day)s?\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "hour": 3600}
_UNIT_S |= {"d": 86400, "day": 86400}


def parse_interval(text: str) -> int:
    """'15m', '30min', '1h', '1d', 'day' -> seconds.  Buckets start on UTC
    multiples of the interval, so an interval must divide a day evenly (or be
    whole days) for the buckets to line up with clock hours and midnights."""
    t = text.strip().lower()
    if t in ("day", "daily"):
        return 86400
    if t in ("hour", "hourly"):
        return 3600
    m = _INTERVAL.match(t)
    if m is None:
        raise ReportError(
            f"bad interval {text!r}: expected a number and a unit, e.g. 15m, 30m, 1h, 1d"
        )
    seconds = int(m.group(1)) * _UNIT_S[m.group(2).lower()]
    if seconds < 60:
        raise ReportError(f"bad interval {text!r}: the shortest interval is 1 minute")
    if seconds < 86400 and 86400 % seconds:
        raise ReportError(f"bad interval {text!r}: it must divide a day evenly (e.g. 15m, 2h)")
    if seconds >= 86400 and seconds % 86400:
        raise ReportError(f"bad interval {text!r}: intervals over a day must be whole days")
    return seconds


def parse_time(text: str, what: str) -> datetime:
    """An ISO date or date-time; without an offset it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(
            f"bad {what} {text!r}: expected an ISO date or time, e.g. 2026-11-23 or "
            "2026-11-23T08:30:00+00:00"
        ) from None
    return as_utc(value)


def zone_of(name: str | None) -> ZoneInfo | None:
    """An IANA time zone, or None for UTC."""
    if name is None or name.strip().upper() in ("", "UTC", "Z"):
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(
            f"unknown time zone {name!r}: expected an IANA name such as America/New_York"
        ) from None


def epoch_seconds(column: Any, dialect: str) -> ColumnElement[Any]:
    """Whole seconds since 1970 (exact: what buckets are cut on)."""
    if dialect == "sqlite":
        # strftime goes through julianday(), which rounds to milliseconds: a time of
        # hh:mm:59.9996 would count as the next second, so cut the fraction first
        return cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def epoch_float(column: Any, dialect: str) -> ColumnElement[Any]:
    """Seconds since 1970 with fractions (durations)."""
    if dialect == "sqlite":
        # julianday() keeps only milliseconds; the stored text has microseconds
        # after the seconds ("YYYY-MM-DD HH:MM:SS.ffffff"), added back exactly
        return epoch_seconds(column, dialect) + cast(func.substr(column, 20), Float)
    return cast(func.extract("epoch", column), Float)


def bucket_start(column: Any, seconds: int, dialect: str) -> ColumnElement[Any]:
    e = epoch_seconds(column, dialect)
    if dialect == "sqlite":
        return cast(e / seconds, Integer) * seconds  # integer division on integers
    return cast(func.floor(e / seconds), BigInteger) * seconds


def from_epoch(seconds: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


def ratio(num: float, den: float) -> float:
    return num / den if den else 0.0
