"""DNC lists in the store, and loading them into the gate's in-memory index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.compliance.dnc import DncIndex, DncList, number_key
from dialer.store.models import DncEntry, DncListRow, table_of

L = table_of(DncListRow)
E = table_of(DncEntry)


async def ensure_list(
    conn: AsyncConnection,
    name: str,
    now: datetime,
    campaigns: list[str] | None = None,
    mandatory: bool = True,
) -> int:
    row = (await conn.execute(select(L.c.id).where(L.c.name == name))).first()
    if row is not None:
        return int(row[0])
    res = await conn.execute(
        insert(L).values(
            name=name,
            campaigns={"names": sorted(campaigns or [])},
            mandatory=mandatory,
            created_at=now,
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


async def list_id(conn: AsyncConnection, name: str) -> int | None:
    row = (await conn.execute(select(L.c.id).where(L.c.name == name))).first()
    return None if row is None else int(row[0])


@dataclass
class EntryIn:
    value: str
    expires_at: datetime | None = None
    reason: str = ""
    source: str = "cli"
    added_by: str = ""


async def add_entries(
    conn: AsyncConnection, lid: int, entries: list[EntryIn], now: datetime
) -> int:
    """Insert or refresh entries (same value again: new expiry/reason win)."""
    if not entries:
        return 0
    values = [e.value for e in entries]
    for i in range(0, len(values), 900):
        await conn.execute(
            delete(E).where(and_(E.c.list_id == lid, E.c.value.in_(values[i : i + 900])))
        )
    await conn.execute(
        insert(E),
        [
            {
                "list_id": lid,
                "value": e.value,
                "expires_at": e.expires_at,
                "reason": e.reason,
                "source": e.source,
                "added_by": e.added_by,
                "created_at": now,
            }
            for e in entries
        ],
    )
    return len(entries)


async def remove_entry(conn: AsyncConnection, lid: int, value: str) -> bool:
    res = await conn.execute(delete(E).where(and_(E.c.list_id == lid, E.c.value == value)))
    return bool(res.rowcount)


async def export_rows(conn: AsyncConnection, lid: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(E.c.value, E.c.expires_at, E.c.reason, E.c.source, E.c.added_by, E.c.created_at)
        .where(E.c.list_id == lid)
        .order_by(E.c.value)
    )
    return [dict(r._mapping) for r in rows]


def _aware(d: datetime | None) -> datetime | None:
    return None if d is None else (d if d.tzinfo else d.replace(tzinfo=UTC))


async def load_index(conn: AsyncConnection) -> DncIndex:
    """Every list, numbers bulk-loaded into sorted arrays."""
    idx = DncIndex()
    for lid, name, campaigns, mandatory in await conn.execute(
        select(L.c.id, L.c.name, L.c.campaigns, L.c.mandatory)
    ):
        lst = idx.add_list(
            DncList(name, frozenset((campaigns or {}).get("names", [])), bool(mandatory))
        )
        keys: list[int] = []
        exps: list[float] = []
        for value, exp in await conn.execute(
            select(E.c.value, E.c.expires_at).where(E.c.list_id == lid)
        ):
            if value.startswith("+") and not value.endswith("*"):
                keys.append(number_key(value))
                e = _aware(exp)
                exps.append(np.inf if e is None else e.timestamp())
            else:
                lst.add(value, _aware(exp))
        if keys:
            lst.load_numbers(np.asarray(keys, np.int64), np.asarray(exps))
    return idx
