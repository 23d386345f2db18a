"""The same engine and schema on PostgreSQL, through the URL alone."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest
from sqlalchemy import func, select

from dialer.store.db import Database
from dialer.store.models import Attempt
from sim.runner import SimOptions, run_scenario
from sim.scenario import parse_scenario

PG = os.environ.get("DIALER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _with_fresh_database() -> tuple[str, str]:
    name = f"dialer_t_{uuid.uuid4().hex[:10]}"
    try:
        conn = await asyncpg.connect(PG, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG}: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG.rsplit("/", 1)[0]
    return name, f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(PG, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_campaign_on_postgresql_stores_every_attempt() -> None:
    async def go() -> None:
        name, url = await _with_fresh_database()
        db = Database(url)
        try:
            sc = parse_scenario(
                'name = "pg"\nshift_hours = 0.3\nlist_size = 400\n[agents]\ncount = 4\n'
                "[called_party]\nanswer_rate = 0.4\n"
            )
            res = await run_scenario(sc, SimOptions(seed=2, db=db))
            async with db.engine.connect() as conn:
                n = (await conn.execute(select(func.count()).select_from(Attempt))).scalar_one()
                live = (await conn.execute(select(func.count()).where(Attempt.live))).scalar_one()
            assert n == res.summary["dials"] > 0
            assert live == res.summary["live_answers"]
            # a second run resumes the same campaign on PostgreSQL too
            res2 = await run_scenario(sc, SimOptions(seed=3, db=db, hours=0.1))
            assert res2.summary["recovered_attempts"] == 0
        finally:
            await db.close()
            await _drop(name)

    asyncio.run(go())
