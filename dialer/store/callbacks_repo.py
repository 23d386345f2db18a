"""Callbacks in the store: booking, listing and cancelling (the API and CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.store.models import Callback, CampaignContact, table_of

CB = table_of(Callback)
CC = table_of(CampaignContact)
COLUMNS = (
    "id",
    "contact_id",
    "due_at",
    "local_time",
    "timezone",
    "agent",
    "status",
    "source",
    "created_by",
    "created_at",
    "note",
    "call_id",
    "closed_at",
)


class CallbackConflict(ValueError):
    pass


@dataclass(frozen=True)
class CallbackIn:
    contact_id: int
    due_at: datetime
    local_time: str
    timezone: str
    agent: str | None
    source: str = "api"
    created_by: str = ""
    note: str = ""


def _aware(d: datetime | None) -> datetime | None:
    return None if d is None else (d if d.tzinfo else d.replace(tzinfo=UTC))


async def enrolled(conn: AsyncConnection, campaign_id: int, contact_id: int) -> bool:
    row = await conn.execute(
        select(CC.c.id).where(and_(CC.c.campaign_id == campaign_id, CC.c.contact_id == contact_id))
    )
    return row.first() is not None


async def book(conn: AsyncConnection, campaign_id: int, cb: CallbackIn, now: datetime) -> int:
    """Stores a scheduled callback; the contact becomes pending again, due then.
    CallbackConflict if the contact already has one scheduled in the campaign."""
    existing = (
        await conn.execute(
            select(CB.c.id, CB.c.due_at).where(
                and_(
                    CB.c.campaign_id == campaign_id,
                    CB.c.contact_id == cb.contact_id,
                    CB.c.status == "scheduled",
                )
            )
        )
    ).first()
    if existing is not None:
        raise CallbackConflict(
            f"contact {cb.contact_id} already has callback {existing[0]} scheduled at "
            f"{_aware(existing[1]).isoformat()}; cancel it first"  # type: ignore[union-attr]
        )
    res = await conn.execute(
        insert(CB).values(
            campaign_id=campaign_id,
            contact_id=cb.contact_id,
            # SQLite keeps the wall digits and drops the offset: always store UTC
            due_at=cb.due_at.astimezone(UTC),
            local_time=cb.local_time,
            timezone=cb.timezone,
            agent=cb.agent,
            status="scheduled",
            source=cb.source,
            created_by=cb.created_by[:100],
            created_at=now,
            note=cb.note,
        )
    )
    await conn.execute(
        update(CC)
        .where(and_(CC.c.campaign_id == campaign_id, CC.c.contact_id == cb.contact_id))
        .values(status="pending", next_at=cb.due_at.astimezone(UTC))
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def _row(r: Any) -> dict[str, Any]:
    d = dict(zip(COLUMNS, r, strict=True))
    for k in ("due_at", "created_at", "closed_at"):
        d[k] = _aware(d[k])
    return d


async def list_callbacks(
    conn: AsyncConnection, campaign_id: int, status: str | None = None
) -> list[dict[str, Any]]:
    cond = CB.c.campaign_id == campaign_id
    if status is not None:
        cond = and_(cond, CB.c.status == status)
    rows = await conn.execute(select(*[CB.c[c] for c in COLUMNS]).where(cond).order_by(CB.c.due_at))
    return [_row(r) for r in rows]


async def get(conn: AsyncConnection, campaign_id: int, callback_id: int) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(*[CB.c[c] for c in COLUMNS]).where(
                and_(CB.c.campaign_id == campaign_id, CB.c.id == callback_id)
            )
        )
    ).first()
    return None if row is None else _row(row)


async def cancel(conn: AsyncConnection, callback_id: int, now: datetime) -> bool:
    """Only a scheduled callback can be cancelled (a dialled one is history)."""
    res = await conn.execute(
        update(CB)
        .where(and_(CB.c.id == callback_id, CB.c.status == "scheduled"))
        .values(status="cancelled", closed_at=now)
    )
    return bool(res.rowcount)
