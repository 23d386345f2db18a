from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.store.db import Database
from sim.runner import SimOptions, run_scenario
from sim.scenario import parse_scenario

# half an hour of power dialling (3 lines per free agent) with few agents, which
# over-dials on purpose: abandons, machines, connects and several 15-minute
# buckets, in about a second
SCENARIO = """
name = "{name}"
shift_hours = 0.6
list_size = 700
[agents]
count = 4
login_spread_s = 5
[called_party]
answer_rate = 0.5
machine_share = 0.3
patience = {{ kind = "lognormal", mean = 4.0, sd = 3.0, min = 0.5, max = 30.0 }}
[campaign]
mode = "power"
power_ratio = 3.0
abandon_target_pct = 3.0
max_attempts = 2
"""


@dataclass(frozen=True)
class Filled:
    url: str
    campaign: str
    sim: dict[str, Any]
    other: dict[str, Any]  # a second campaign in the same database, "other"


async def fill(url: str, name: str = "rep", seed: int = 1) -> dict[str, Any]:
    db = Database(url)
    try:
        res = await run_scenario(
            parse_scenario(SCENARIO.format(name=name)), SimOptions(seed=seed, db=db)
        )
        return res.summary
    finally:
        await db.close()


@pytest.fixture(scope="session")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    d: Path = tmp_path_factory.mktemp("reports")
    url = f"sqlite+aiosqlite:///{d / 'rep.db'}"
    summary = asyncio.run(fill(url))
    other = asyncio.run(fill(url, "other", seed=2))
    return Filled(url, "rep", summary, other)


@pytest.fixture
async def conn(filled: Filled) -> AsyncIterator[AsyncConnection]:
    db = Database(filled.url)
    try:
        async with db.engine.connect() as c:
            yield c
    finally:
        await db.close()
