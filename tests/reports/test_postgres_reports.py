"""The same reports on PostgreSQL: the SQL that differs by dialect (epoch,
buckets, greatest/least) gives the same figures."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from dialer import reports as R
from dialer.store.db import Database
from tests.conftest import drop_pg_database, fresh_pg_database
from tests.reports.conftest import Filled, fill


def test_reports_on_postgresql_match_sqlite(filled: Filled) -> None:
    async def collect(url: str) -> dict[str, object]:
        db = Database(url)
        try:
            async with db.engine.connect() as conn:
                last = await R.last_activity(conn, "rep")
                assert last is not None
                cut = last - timedelta(minutes=13, seconds=7)
                ab = await R.abandonment(conn, "rep", last)
                return {
                    "summary": (await R.summary(conn, "rep")).as_dict(),
                    "intervals": [r.as_dict() for r in await R.intervals(conn, "rep", "15m")],
                    "days": [r.as_dict() for r in await R.intervals(conn, "rep", "1d")],
                    "windows": [w.as_dict() for w in ab.windows],
                    "calls": sorted((c.call_id, c.waited_s) for c in ab.calls),
                    "agents": [
                        {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}
                        for d in (
                            a.as_dict() for a in await R.agent_performance(conn, "rep", cut, None)
                        )
                    ],
                    "dispositions": await R.dispositions(conn, "rep"),
                    "attempts": await R.attempt_history(conn, "rep"),
                }
        finally:
            await db.close()

    async def go() -> None:
        name, url = await fresh_pg_database("dialer_rep")
        try:
            sim = await fill(url)
            assert sim["dials"] == filled.sim["dials"]  # same seed, same run
            pg = await collect(url)
            lite = await collect(filled.url)
        finally:
            await drop_pg_database(name)
        s = pg["summary"]
        assert isinstance(s, dict)
        assert s["dials"] == sim["dials"] and s["abandons"] == sim["abandoned"]
        assert s["contacts"] == sim["live_answers"]
        for key in ("summary", "intervals", "days", "windows", "calls", "dispositions"):
            assert pg[key] == lite[key], key
        assert pg["agents"] == lite["agents"]
        assert pg["attempts"] == lite["attempts"]

    asyncio.run(go())
