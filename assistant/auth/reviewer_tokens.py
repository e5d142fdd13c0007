"""Reviewer tokens (``rt_…``) listed and revoked: by the CLI (SPEC 12), an admin's page and the API.

Only prefixes are ever shown; the secret was printed once when the token was issued.
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec
from sqlalchemy import Connection, select, update

from assistant.audit.service import record
from assistant.auth.principal import SYSTEM, Principal
from assistant.db.base import utcnow
from assistant.db.tenancy import User, UserToken
from assistant.errors import NotFound

PREFIX = re.compile(r"^[a-z]{2}_[0-9a-f]{1,32}$")
"""What a token's prefix looks like (``auth.secrets``); anything else names no token."""


class TokenOut(msgspec.Struct):
    prefix: str
    user_email: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    active: bool


def list_tokens(conn: Connection, brand_id: int | None = None, email: str | None = None) -> list[TokenOut]:
    """Tokens of one user (``email``) or of every user of a brand, newest first."""
    query = (select(UserToken.prefix, User.email, UserToken.created_at, UserToken.expires_at, UserToken.revoked_at)
             .join(User, User.id == UserToken.user_id).order_by(UserToken.id.desc()))
    if brand_id is not None:
        query = query.where(User.brand_id == brand_id)
    if email is not None:
        query = query.where(User.email == email.strip().lower())
    now = utcnow()
    return [TokenOut(prefix=r.prefix, user_email=r.email, created_at=r.created_at, expires_at=r.expires_at,
                     revoked_at=r.revoked_at,
                     active=r.revoked_at is None and (r.expires_at is None or r.expires_at > now))
            for r in conn.execute(query)]


def revoke_token(conn: Connection, prefix: str, brand_id: int | None = None, actor: Principal = SYSTEM,
                 owner_id: int | None = None) -> None:
    """Revoke an active token by its prefix; another brand's token (when ``brand_id`` is given) or another
    user's (when ``owner_id`` is) is 404."""
    if not PREFIX.match(prefix.strip()):
        raise NotFound("no active reviewer token with that prefix")
    query = select(UserToken.id, User.id.label("user_id"), User.brand_id).join(User, User.id == UserToken.user_id) \
        .where(UserToken.prefix == prefix.strip(), UserToken.revoked_at.is_(None))
    if brand_id is not None:
        query = query.where(User.brand_id == brand_id)
    if owner_id is not None:
        query = query.where(User.id == owner_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no active reviewer token with prefix {prefix.strip()[:40]!r}")
    conn.execute(update(UserToken).where(UserToken.id == row.id).values(revoked_at=utcnow()))
    record(conn, actor, "user_token.revoked", "user", row.user_id, brand_id=row.brand_id, prefix=prefix.strip())
