"""A flush the database refuses loses nothing: its rows wait for the next flush.
The failure is real: the table the events go to is renamed away on the SQLite
file behind the recorder's back, then put back."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dialer.callstate import CallState
from dialer.campaign import CampaignSettings
from dialer.clock import VirtualClock
from dialer.contacts import ParsedContact
from dialer.store import repo
from dialer.store.db import Database
from dialer.store.models import Attempt, CallEvent, table_of
from dialer.store.recorder import StoreRecorder

S = CallState


async def test_a_refused_flush_keeps_its_rows_for_the_next(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    try:
        async with db.engine.begin() as conn:
            lid = await repo.ensure_list(conn, "l", "US", now)
            await repo.store_contacts(
                conn, lid, [ParsedContact(2, "a", [("+12125550100", "phone")], {})], now
            )
            cid = await repo.create_campaign(conn, CampaignSettings(name="c"), lid, now)
            await repo.enroll_contacts(conn, cid, lid)
            [(lead, _)] = await repo.load_leads(conn, cid)
        rec = StoreRecorder(db, VirtualClock(now), cid, "r0")
        rec.attempt_started("c1", lead, lead.number, 0.0, S.QUEUED)
        rec.transition("c1", 0.1, S.QUEUED, S.DIALING, "")
        durable: list[str] = []
        rec.when_durable(lambda: durable.append("c1"))
        with sqlite3.connect(path) as raw:
            raw.execute("ALTER TABLE call_events RENAME TO call_events_away")
        with pytest.raises(Exception, match="call_events"):
            await rec.flush()
        assert rec.failed_flushes == 1 and durable == []  # not durable: not said so
        rec.transition("c1", 0.2, S.DIALING, S.RINGING, "")  # more comes meanwhile
        with sqlite3.connect(path) as raw:
            raw.execute("ALTER TABLE call_events_away RENAME TO call_events")
        await rec.flush()
        assert durable == ["c1"]
        async with db.engine.connect() as conn:
            attempts = (
                await conn.execute(select(func.count()).select_from(table_of(Attempt)))
            ).scalar()
            events = (
                (
                    await conn.execute(
                        select(table_of(CallEvent).c.to_state).order_by(table_of(CallEvent).c.id)
                    )
                )
                .scalars()
                .all()
            )
        assert attempts == 1 and list(events) == ["dialing", "ringing"]
    finally:
        await db.close()
