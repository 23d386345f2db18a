"""Persistence: SQLAlchemy 2 (async) models, Alembic migrations and the Store API."""

from dialer.store.db import DEFAULT_DB_URL, Database, resolve_db_url

__all__ = ["DEFAULT_DB_URL", "Database", "resolve_db_url"]
