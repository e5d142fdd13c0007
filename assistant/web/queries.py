"""Reads the admin pages need that no service offers (lists of users and keys). The history of many people
lives in ``people.service.recent_histories``, the user admin writes in ``auth.service``."""

from __future__ import annotations

from sqlalchemy import select

from assistant.db import Database
from assistant.db.tenancy import ApiKey, User


async def list_users(db: Database, brand_id: int) -> list[User]:
    async with db.read() as session:
        return list((await session.execute(select(User).where(User.brand_id == brand_id).order_by(User.id))).scalars())


async def list_keys(db: Database, brand_id: int) -> list[ApiKey]:
    async with db.read() as session:
        return list((await session.execute(
            select(ApiKey).where(ApiKey.brand_id == brand_id).order_by(ApiKey.id.desc()))).scalars())
