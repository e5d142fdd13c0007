"""Reads the admin pages need that no service offers (lists of users and keys, the brand's policy screen).
The history of many people lives in ``people.service.recent_histories``, the user admin writes in
``auth.service``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from assistant.db import Database
from assistant.db.tenancy import ApiKey, Brand, User
from assistant.errors import NotFound
from assistant.policy import Policy
from assistant.policy.service import policy_of


async def list_users(db: Database, brand_id: int) -> list[Row[Any]]:
    return await db.run_read(_users, brand_id)


def _users(conn: Connection, brand_id: int) -> list[Row[Any]]:
    return list(conn.execute(select(User.id, User.email, User.role, User.disabled)
                             .where(User.brand_id == brand_id).order_by(User.id)).all())


async def list_keys(db: Database, brand_id: int) -> list[Row[Any]]:
    return await db.run_read(_keys, brand_id)


def _keys(conn: Connection, brand_id: int) -> list[Row[Any]]:
    return list(conn.execute(select(ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.scopes, ApiKey.created_at,
                                    ApiKey.revoked_at)
                             .where(ApiKey.brand_id == brand_id).order_by(ApiKey.id.desc())).all())


async def policy_screen(db: Database, brand_id: int) -> tuple[Row[Any], Policy]:
    """The brand (``name``, its own ``policy_toml`` or None) and the policy in force."""
    return await db.run_read(_policy_screen, brand_id)


def _policy_screen(conn: Connection, brand_id: int) -> tuple[Row[Any], Policy]:
    brand = conn.execute(select(Brand.name, Brand.policy_toml).where(Brand.id == brand_id)).first()
    if brand is None:
        raise NotFound("no brand")
    return brand, policy_of(brand.policy_toml)
