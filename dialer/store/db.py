"""Database connection and migrations.

The URL is a setting (``--db`` or ``DIALER_DB_URL``): SQLite through aiosqlite by
default, PostgreSQL through asyncpg when one machine is not enough, with no code
change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_DB_URL = "sqlite+aiosqlite:///dialer.db"
_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def resolve_db_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("DIALER_DB_URL") or DEFAULT_DB_URL


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (reports, the API) run while the engine writes; NORMAL
    # sync keeps every committed transaction across a process crash.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=15000")  # a loaded machine: wait, do not fail
    cur.close()


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""

        def _upgrade(conn: Connection) -> None:
            command.upgrade(alembic_config(conn), "head")

        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    def describe(self) -> str:
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            return str(Path(path).resolve()) if path and path != ":memory:" else self.url
        return self.engine.url.render_as_string(hide_password=True)
