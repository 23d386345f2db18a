from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from dialer.api import create_app
from dialer.config import parse_config
from dialer.runtime import Runtime
from dialer.store.db import Database
from sim.scenario import parse_scenario
from sim.world import SimWorld

ROOT = Path(__file__).resolve().parent.parent
# Live-clock tests call at any hour; see the file for why.
ANYTIME_CALLTIMES = str(ROOT / "tests" / "fixtures" / "anytime-calltimes.toml")


def need_tool(name: str) -> str:
    """Path of a system tool, or skip with a reason (CI installs them all, and
    fails instead of skipping, because CI=true)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (make test installs it via .ci/system-deps)")
        pytest.skip(f"{name} is not installed (run `make system-deps` as root)")
    return path


PG = os.environ.get("DIALER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def fresh_pg_database(prefix: str = "dialer_t") -> tuple[str, str]:
    """A new, empty PostgreSQL database on the local server: (name, async URL).
    Skips when the server is unreachable, except in CI, where it must be up."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
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
    base = PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


ADMIN = "test-admin-token-0123456789"
FAST = """
name = "fast"
seed = 3
shift_hours = 8
list_size = 300
[agents]
count = 4
login_spread_s = 0.2
wrap = { kind = "lognormal", mean = 1.0, sd = 0.5, min = 0.2, max = 5.0 }
[called_party]
answer_rate = 0.6
machine_share = 0.2
ring = { kind = "lognormal", mean = 1.0, sd = 0.4, min = 0.3, max = 4.0 }
talk = { kind = "lognormal", mean = 2.0, sd = 1.0, min = 0.5, max = 6.0 }
"""
CONFIG = f"""
stats_interval_s = 0.2
shutdown_grace_s = 3
bootstrap_admin_token = "{ADMIN}"
[[campaigns]]
name = "c1"
list = "l1"
no_answer_timeout_s = 15
calltimes = "{ANYTIME_CALLTIMES}"
"""


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    cfg = parse_config(CONFIG)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    rt = Runtime(cfg, db, SimWorld(parse_scenario(FAST), 1))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()
        await db.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, runtime.db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as c:
        yield c
