"""Bearer-token authentication with roles (admin > supervisor > agent)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from dialer.store.db import Database
from dialer.tokens import Role, lookup


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    async def dep(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            # EventSource cannot send headers: the dashboard passes ?token= for streams only
            token = request.query_params.get("token", "")
        if not token:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        db: Database = request.app.state.db
        async with db.engine.connect() as conn:
            found = await lookup(conn, token)
        if found is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown or revoked API token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        name, have = found
        if not have.allows(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {have.value!r} may not do this (needs {role.value})",
            )
        return Principal(name, have)

    return dep
