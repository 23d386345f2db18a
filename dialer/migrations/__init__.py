"""Alembic migrations for the store (run by Database.migrate, never by hand)."""
