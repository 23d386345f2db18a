"""Migration 0003 (callbacks, attempt dispositions) on PostgreSQL and SQLite: upgrade,
downgrade and upgrade again, and a callback's time round-trips with its zone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from dialer.campaign import CampaignSettings
from dialer.contacts import ParsedContact
from dialer.store import callbacks_repo, repo
from dialer.store.db import Database, alembic_config
from tests.conftest import ANYTIME_CALLTIMES, drop_pg_database, fresh_pg_database


def test_migration_0003_round_trips_on_postgresql() -> None:
    async def go() -> None:
        name, url = await fresh_pg_database()
        try:
            await round_trip(url)
        finally:
            await drop_pg_database(name)

    asyncio.run(go())


def test_migration_0003_round_trips_on_sqlite(sqlite_url: str) -> None:
    asyncio.run(round_trip(sqlite_url))


async def round_trip(url: str) -> None:
    db = Database(url)
    try:
        await db.migrate()

        def tables(conn: Connection) -> set[str]:
            return set(inspect(conn).get_table_names())

        async with db.engine.connect() as conn:
            assert {"callbacks", "attempt_dispositions"} <= await conn.run_sync(tables)

        def down(conn: Connection) -> None:
            command.downgrade(alembic_config(conn), "0002")

        async with db.engine.begin() as conn:
            await conn.run_sync(down)
        async with db.engine.connect() as conn:
            left = await conn.run_sync(tables)
        assert "callbacks" not in left and "dnc_lists" in left
        await db.migrate()

        now = datetime.now(UTC)
        due = datetime(2030, 6, 3, 10, 30, tzinfo=ZoneInfo("America/Chicago"))
        async with db.engine.begin() as conn:
            lid = await repo.ensure_list(conn, "l", "US", now)
            await repo.store_contacts(
                conn, lid, [ParsedContact(2, "k", [("+12125550100", "phone")], {})], now
            )
            camp = await repo.create_campaign(
                conn, CampaignSettings(name="c", calltimes=ANYTIME_CALLTIMES), lid, now
            )
            (cid,) = await repo.enroll_contacts(conn, camp, lid)
            await callbacks_repo.book(
                conn,
                camp,
                callbacks_repo.CallbackIn(cid, due, "2030-06-03T10:30", "America/Chicago", "ann"),
                now,
            )
        async with db.engine.connect() as conn:
            (row,) = await callbacks_repo.list_callbacks(conn, camp, "scheduled")
            leads = await repo.load_leads(conn, camp)
        assert row["due_at"] == due and row["agent"] == "ann"
        assert leads[0][0].callback_at == due and leads[0][0].callback_agent == "ann"
    finally:
        await db.close()
