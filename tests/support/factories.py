"""Test data made through the real services, so tests start from states the product can reach."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from assistant.auth import service as auth
from assistant.db import Database

_counter = itertools.count(1)


@dataclass
class BrandKit:
    """A brand with a key of every scope and a reviewer and an admin, each with a bearer header."""

    id: int
    slug: str
    ingest: dict[str, str]
    outbox: dict[str, str]
    read: dict[str, str]
    admin_key: dict[str, str]
    """An API key with the ``admin`` scope (privacy requests only)."""
    reviewer: dict[str, str]
    admin: dict[str, str]
    reviewer_id: int
    admin_id: int
    reviewer_email: str
    admin_email: str
    password: str


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Factory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def brand(self, slug: str | None = None, password: str = "correct horse battery") -> BrandKit:
        slug = slug or f"brand-{next(_counter)}"
        def make(conn: Connection) -> tuple[Any, ...]:
            brand = auth.create_brand(conn, slug, slug.title())
            keys = {scope: auth.create_api_key(conn, brand.id, [scope]) for scope in ("ingest", "outbox", "read", "admin")}
            reviewer = auth.create_user(conn, brand.id, f"reviewer@{slug}.example", "reviewer", password)
            admin = auth.create_user(conn, brand.id, f"admin@{slug}.example", "admin", password)
            return brand, keys, reviewer, admin, auth.create_user_token(conn, reviewer), \
                auth.create_user_token(conn, admin)

        brand, keys, reviewer, admin, reviewer_token, admin_token = await self.db.run_write(make)
        return BrandKit(id=brand.id, slug=slug, ingest=bearer(keys["ingest"].token),
                        outbox=bearer(keys["outbox"].token), read=bearer(keys["read"].token),
                        admin_key=bearer(keys["admin"].token),
                        reviewer=bearer(reviewer_token.token), admin=bearer(admin_token.token),
                        reviewer_id=reviewer.id, admin_id=admin.id, reviewer_email=reviewer.email,
                        admin_email=admin.email, password=password)


def mention(external_id: str | int | None = None, *, handle: str = "@ana", text: str = "@acme my order is late",
            created_at: dt.datetime | str | None = None, **extra: Any) -> dict[str, Any]:
    """A valid mention body; keyword arguments override or add fields."""
    at = created_at or dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=next(_counter))
    body: dict[str, Any] = {
        "platform": "x",
        "external_id": str(external_id if external_id is not None else next(_counter) + 100_000),
        "text": text,
        "created_at": at if isinstance(at, str) else at.isoformat(),
        "author": {"handle": handle, "display_name": handle.lstrip("@").title()},
    }
    body.update(extra)
    return body
