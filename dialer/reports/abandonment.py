"""Abandonment explained: the rate the regulator asks for, over the usual
windows, with the numbers behind it and the calls themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.callstate import CallState
from dialer.clock import system_wall_clock
from dialer.reports.common import A, Period, find_campaign, maybe_utc, ratio
from dialer.reports.results import MACHINE_RESULTS
from dialer.store.models import CallEvent, table_of

CE = table_of(CallEvent)

DEFINITION = (
    "Abandon rate = abandoned calls / live answers. A call is abandoned when a person "
    "answered and no agent was connected within the connect window (2 s after the "
    "greeting ends), or the person hung up while waiting; the identification message is "
    "played. Live answers count every call a person answered, abandoned or not; machine "
    "and fax answers are excluded. Calls are counted in the window by when they were "
    "dialled. With an AMD false-positive estimate f, f x machine verdicts is added to "
    "both numerator and denominator (people the detector took for machines and hung up "
    "on count as abandoned live answers)."
)

WINDOWS: tuple[tuple[str, timedelta | None], ...] = (
    ("since_start", None),
    ("rolling_30d", timedelta(days=30)),
    ("rolling_24h", timedelta(hours=24)),
    ("last_hour", timedelta(hours=1)),
)


@dataclass(slots=True)
class Window:
    name: str
    start: datetime | None  # None: since the campaign's first dial
    end: datetime
    abandons: int
    contacts: int
    machines: int
    fp_term: float  # fp_rate * machines

    @property
    def rate(self) -> float:
        return ratio(self.abandons, self.contacts)

    @property
    def rate_with_fp(self) -> float:
        return ratio(self.abandons + self.fp_term, self.contacts + self.fp_term)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.name,
            "start": self.start,
            "end": self.end,
            "numerator": self.abandons,
            "denominator": self.contacts,
            "rate": self.rate,
            "machines": self.machines,
            "fp_term": self.fp_term,
            "numerator_with_fp": self.abandons + self.fp_term,
            "denominator_with_fp": self.contacts + self.fp_term,
            "rate_with_fp": self.rate_with_fp,
        }


@dataclass(slots=True)
class AbandonedCall:
    call_id: str
    contact_id: int
    number: str
    started_at: datetime
    abandoned_at: datetime | None
    waited_s: float | None  # from "waiting for an agent" to abandoned

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "contact_id": self.contact_id,
            "number": self.number,
            "started_at": self.started_at,
            "abandoned_at": self.abandoned_at,
            "waited_s": self.waited_s,
        }


@dataclass(slots=True)
class Abandonment:
    campaign: str
    as_of: datetime
    target: float
    fp_rate: float
    definition: str
    windows: list[Window]
    calls: list[AbandonedCall] = field(default_factory=list)
    calls_total: int = 0  # the drill-down may be cut at ``limit``

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "as_of": self.as_of,
            "target": self.target,
            "fp_rate": self.fp_rate,
            "definition": self.definition,
            "windows": [w.as_dict() for w in self.windows],
            "calls": [c.as_dict() for c in self.calls],
            "calls_total": self.calls_total,
        }


def _fp_rate(settings: dict[str, Any]) -> float:
    raw = settings.get("amd_false_positive_rate", 0.0)
    try:
        value = float(raw or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return min(max(value, 0.0), 1.0)


async def last_activity(conn: AsyncConnection, campaign: str) -> datetime | None:
    """When the campaign last dialled (an ``as_of`` for stored or simulated runs)."""
    camp = await find_campaign(conn, campaign)
    q = select(func.max(A.c.started_at)).where(A.c.campaign_id == camp.id)
    return maybe_utc((await conn.execute(q)).scalar_one())


async def abandonment(
    conn: AsyncConnection,
    campaign: str,
    as_of: datetime | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> Abandonment:
    """Windows end at ``as_of`` (inclusive; default now).  The drill-down lists
    abandoned calls dialled within [since, until), newest first, at most ``limit``."""
    camp = await find_campaign(conn, campaign)
    end = maybe_utc(as_of) or system_wall_clock()
    fp = _fp_rate(camp.settings)
    cols = []
    for name, span in WINDOWS:
        inside = A.c.started_at >= end - span if span is not None else None

        def cnt(cond: Any, inside: Any = inside) -> Any:
            c = cond if inside is None else and_(inside, cond)
            return func.coalesce(func.sum(case((c, 1), else_=0)), 0)

        cols += [
            cnt(A.c.abandoned.cast(Integer) == 1).label(f"{name}_ab"),
            cnt(A.c.live.cast(Integer) == 1).label(f"{name}_live"),
            cnt(A.c.result.in_(MACHINE_RESULTS)).label(f"{name}_mach"),
        ]
    row = (
        await conn.execute(select(*cols).where(A.c.campaign_id == camp.id, A.c.started_at <= end))
    ).one()
    windows = []
    for name, span in WINDOWS:
        m = int(getattr(row, f"{name}_mach"))
        windows.append(
            Window(
                name,
                None if span is None else end - span,
                end,
                int(getattr(row, f"{name}_ab")),
                int(getattr(row, f"{name}_live")),
                m,
                fp * m,
            )
        )
    calls, total = await abandoned_calls(conn, camp.id, Period.of(since, until), limit)
    return Abandonment(camp.name, end, camp.abandon_target, fp, DEFINITION, windows, calls, total)


def _event_at(state: CallState, agg: Any) -> Any:
    return (
        select(agg(CE.c.at))
        .where(CE.c.call_id == A.c.call_id, CE.c.to_state == state.value)
        .scalar_subquery()
    )


async def abandoned_calls(
    conn: AsyncConnection, campaign_id: int, period: Period, limit: int
) -> tuple[list[AbandonedCall], int]:
    where = [A.c.campaign_id == campaign_id, A.c.abandoned.is_(True), *period.where(A.c.started_at)]
    total = int((await conn.execute(select(func.count()).where(*where))).scalar_one())
    q = (
        select(
            A.c.call_id,
            A.c.contact_id,
            A.c.number,
            A.c.started_at,
            _event_at(CallState.WAITING_AGENT, func.min).label("waiting_at"),
            _event_at(CallState.ABANDONED, func.max).label("abandoned_at"),
        )
        .where(*where)
        .order_by(A.c.started_at.desc(), A.c.id.desc())
        .limit(max(0, limit))
    )
    calls = []
    for r in await conn.execute(q):
        waiting, ab = maybe_utc(r.waiting_at), maybe_utc(r.abandoned_at)
        waited = (ab - waiting).total_seconds() if waiting and ab else None
        calls.append(
            AbandonedCall(
                str(r.call_id),
                int(r.contact_id),
                str(r.number),
                maybe_utc(r.started_at) or r.started_at,
                ab,
                waited,
            )
        )
    return calls, total
