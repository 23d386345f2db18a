"""API tokens with roles.  Only hashes are stored; the token is shown once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.store.models import ApiToken


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"agent": 0, "supervisor": 1, "admin": 2}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(conn: AsyncConnection, name: str, role: Role, now: datetime) -> str:
    exists = (await conn.execute(select(ApiToken.id).where(ApiToken.name == name))).first()
    if exists is not None:
        raise ValueError(f"a token named {name!r} exists already (revoke it first)")
    token = "dlr_" + secrets.token_urlsafe(32)
    await conn.execute(
        insert(ApiToken).values(
            name=name, role=role.value, token_hash=hash_token(token), created_at=now, revoked=False
        )
    )
    return token


async def ensure_token(
    conn: AsyncConnection, name: str, role: Role, token: str, now: datetime
) -> None:
    """Store a token chosen by the operator (config bootstrap) if it is not there."""
    h = hash_token(token)
    if (await conn.execute(select(ApiToken.id).where(ApiToken.token_hash == h))).first():
        return
    await conn.execute(
        insert(ApiToken).values(name=name, role=role.value, token_hash=h, created_at=now)
    )


async def revoke_token(conn: AsyncConnection, name: str) -> bool:
    res = await conn.execute(update(ApiToken).where(ApiToken.name == name).values(revoked=True))
    return bool(res.rowcount)


async def lookup(conn: AsyncConnection, token: str) -> tuple[str, Role] | None:
    row = (
        await conn.execute(
            select(ApiToken.name, ApiToken.role).where(
                ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False)
            )
        )
    ).first()
    return None if row is None else (str(row[0]), Role(row[1]))
