"""`dialer db`: schema management."""

from __future__ import annotations

import typer

from dialer.cli.common import out, with_db
from dialer.store.db import Database

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the schema to the newest revision."""

    async def go(db: Database) -> str:
        return db.describe()

    out.print(f"schema up to date: {with_db(go)}")
