"""What every command shares: the database URL, consoles, running coroutines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console

from dialer.store.db import Database, resolve_db_url

T = TypeVar("T")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
_db_url: str | None = None


def set_db_url(url: str | None) -> None:
    global _db_url
    _db_url = url


def db_url() -> str:
    return resolve_db_url(_db_url)


def with_db(fn: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database, bring the schema up to date, run ``fn``, close."""

    async def go() -> T:
        db = Database(db_url())
        try:
            await db.migrate()
            return await fn(db)
        finally:
            await db.close()

    return asyncio.run(go())
