"""The same engine and schema on PostgreSQL, through the URL alone."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from dialer.store.db import Database
from dialer.store.models import Attempt
from sim.runner import SimOptions, run_scenario
from sim.scenario import parse_scenario
from tests.conftest import drop_pg_database, fresh_pg_database


def test_campaign_on_postgresql_stores_every_attempt() -> None:
    async def go() -> None:
        name, url = await fresh_pg_database("dialer_t")
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
            await drop_pg_database(name)

    asyncio.run(go())
