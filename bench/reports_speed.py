"""How long each report takes on a realistically large campaign.

Fills a database with a simulated 100-agent shift (about 50k attempts for 4 h),
then times every report (best of 3) against a baseline in the same process: a
bare ``count(*)`` of the campaign's attempts, the least any report that reads
every attempt must do.  Runs on SQLite, and on PostgreSQL when one answers.

    .venv/bin/python bench/reports_speed.py [--hours 4] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from dialer import reports as R
from dialer.store.db import Database
from dialer.store.models import Attempt
from sim.runner import SimOptions, run_scenario
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


async def best_of(n: int, fn: Callable[[], Awaitable[Any]]) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - t)
    return best


async def measure(url: str, hours: float) -> None:
    db = Database(url)
    try:
        sc = load_scenario(ROOT / "config/scenarios/bench-100.toml")
        t = time.perf_counter()
        res = await run_scenario(sc, SimOptions(seed=5, db=db, hours=hours))
        name = sc.name
        print(f"  filled in {time.perf_counter() - t:.1f} s: {res.summary['dials']} attempts")
        async with db.engine.connect() as conn:
            cid = res.campaign_id
            last = await R.last_activity(conn, name)
            assert last is not None
            mid = last - timedelta(hours=hours / 2)

            async def baseline() -> Any:
                q = select(func.count()).select_from(Attempt).where(Attempt.campaign_id == cid)
                return (await conn.execute(q)).scalar_one()

            base = await best_of(3, baseline)
            print(f"  {'baseline count(*)':<34} {base * 1000:8.1f} ms")
            cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("summary", lambda: R.summary(conn, name)),
                ("summary, last half", lambda: R.summary(conn, name, mid)),
                ("intervals 15m", lambda: R.intervals(conn, name, "15m")),
                ("intervals 1d", lambda: R.intervals(conn, name, "1d")),
                ("abandonment (+1000 calls)", lambda: R.abandonment(conn, name, last)),
                ("attempt history (all rows)", lambda: R.attempt_history(conn, name)),
                (
                    "attempt history, one contact",
                    lambda: R.attempt_history(conn, name, None, None, 1),
                ),
                ("agents", lambda: R.agent_performance(conn, name)),
                ("dispositions", lambda: R.dispositions(conn, name)),
                ("refusals", lambda: R.refusals(conn, name)),
            ]
            for label, fn in cases:
                secs = await best_of(3, fn)
                print(f"  {label:<34} {secs * 1000:8.1f} ms   {secs / base:6.1f}x baseline")
            if db.is_sqlite:
                plan = await conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT count(*) FROM attempts "
                        "WHERE campaign_id = :c AND started_at >= :s"
                    ),
                    {"c": cid, "s": str(mid.replace(tzinfo=None))},
                )
                print("  plan (ranged summary):", "; ".join(str(r[-1]) for r in plan))
    finally:
        await db.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=4.0)
    # filling PostgreSQL row by row through the simulator takes minutes: opt in
    ap.add_argument("--pg", default=None, help="e.g. postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        print("SQLite")
        await measure(f"sqlite+aiosqlite:///{Path(d) / 'bench.db'}", args.hours)
    if args.pg is None:
        print("PostgreSQL skipped (pass --pg URL)")
        return
    import asyncpg

    try:
        admin = await asyncpg.connect(args.pg, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL skipped: {exc}")
        return
    name = f"dialer_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        print("PostgreSQL")
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        await measure(f"{base}/{name}", args.hours)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
