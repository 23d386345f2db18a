"""Over random ranges and intervals: buckets partition the range exactly, and
splitting a range anywhere splits every figure into two parts that add up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer import reports as R
from dialer.store.db import Database
from tests.reports.conftest import Filled

FIELDS = ("dials", "contacts", "connects", "abandons", "machines")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    a=st.floats(0, 40 * 60),
    length=st.floats(1, 40 * 60),
    split=st.floats(0, 1),
    interval=st.sampled_from(["1m", "5m", "15m", "30m", "1h", "1d"]),
)
def test_ranges_split_and_bucket_exactly(
    filled: Filled, a: float, length: float, split: float, interval: str
) -> None:
    async def go() -> None:
        db = Database(filled.url)
        try:
            async with db.engine.connect() as conn:
                first = (await R.attempt_history(conn, "rep", limit=1))[0]["started_at"]
                since = first + timedelta(seconds=a)
                until = since + timedelta(seconds=length)
                mid = since + (until - since) * split
                whole = (await R.summary(conn, "rep", since, until)).figures
                buckets = await R.intervals(conn, "rep", interval, since, until)
                if mid > since and mid < until:
                    left = (await R.summary(conn, "rep", since, mid)).figures
                    right = (await R.summary(conn, "rep", mid, until)).figures
                    for f in FIELDS:
                        assert getattr(left, f) + getattr(right, f) == getattr(whole, f)
                for f in FIELDS:
                    assert sum(getattr(b.figures, f) for b in buckets) == getattr(whole, f)
                starts = [b.start for b in buckets]
                assert starts == sorted(set(starts))
                agents = await R.agent_performance(conn, "rep", since, until)
                span = (until - since).total_seconds()
                for ag in agents:
                    # nobody is logged in for longer than the range itself
                    assert ag.logged_in_s <= span + 1e-3
        finally:
            await db.close()

    asyncio.run(go())
