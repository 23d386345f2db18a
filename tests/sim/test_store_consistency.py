"""The figures the simulator reports are the figures stored: reports are built
from the database, so the two must agree exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dialer.callstate import OPEN_STATES
from dialer.store.db import Database
from dialer.store.models import Attempt, CallEvent, CampaignContact
from sim.runner import SimOptions, run_scenario
from sim.scenario import parse_scenario

SCENARIO = """
name = "prop"
shift_hours = 0.4
list_size = 500
[agents]
count = {agents}
login_spread_s = 5
[called_party]
answer_rate = {answer}
machine_share = 0.3
patience = {{ kind = "lognormal", mean = 4.0, sd = 3.0, min = 0.5, max = 30.0 }}
[campaign]
policy = "{policy}"
"""


async def _run_and_count(url: str, text: str, seed: int, target: float) -> tuple[dict, dict]:
    db = Database(url)
    try:
        res = await run_scenario(
            parse_scenario(text), SimOptions(seed=seed, db=db, abandon_target_pct=target)
        )
        A = Attempt
        async with db.engine.connect() as conn:
            stored = {
                "attempts": (await conn.execute(select(func.count()).select_from(A))).scalar_one(),
                "live": (await conn.execute(select(func.count()).where(A.live))).scalar_one(),
                "abandoned": (
                    await conn.execute(select(func.count()).where(A.abandoned))
                ).scalar_one(),
                "open": (
                    await conn.execute(
                        select(func.count()).where(A.state.in_([s.value for s in OPEN_STATES]))
                    )
                ).scalar_one(),
                "abandon_events": (
                    await conn.execute(
                        select(func.count()).where(CallEvent.to_state == "abandoned")
                    )
                ).scalar_one(),
                "dialing_contacts": (
                    await conn.execute(
                        select(func.count()).where(CampaignContact.status == "dialing")
                    )
                ).scalar_one(),
            }
        return res.summary, stored
    finally:
        await db.close()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    agents=st.integers(2, 8),
    answer=st.floats(0.2, 0.7),
    target=st.sampled_from([0.0, 1.0, 3.0, 10.0]),
    policy=st.sampled_from(["predictive", "progressive", "power"]),
)
def test_reported_abandon_rate_equals_stored_abandoned_over_stored_live(
    tmp_path_factory: object, seed: int, agents: int, answer: float, target: float, policy: str
) -> None:
    d = Path(getattr(tmp_path_factory, "mktemp")("prop"))  # noqa: B009
    url = f"sqlite+aiosqlite:///{d / 'p.db'}"
    text = SCENARIO.format(agents=agents, answer=answer, policy=policy)
    summary, stored = asyncio.run(_run_and_count(url, text, seed, target))
    assert stored["attempts"] == summary["dials"]
    assert stored["live"] == summary["live_answers"]
    assert stored["abandoned"] == summary["abandoned"]
    assert stored["abandon_events"] == summary["abandoned"]
    expected = stored["abandoned"] / stored["live"] if stored["live"] else 0.0
    assert summary["abandon_rate"] == expected
    # a finished run leaves nothing open
    assert stored["open"] == 0
    assert stored["dialing_contacts"] == 0
