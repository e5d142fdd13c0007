"""Reads and small admin writes the pages need that no service offers yet.

``recent_history`` belongs with ``people/service.history`` and the user admin writes with ``auth/service``;
they live here until their owners take them (the web package must not grow a second home for those rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.audit import record
from assistant.auth.principal import ROLES, Principal
from assistant.db import Database
from assistant.db.people import Interaction
from assistant.db.tenancy import ApiKey, User
from assistant.errors import NotFound, ValidationFailed


async def recent_history(session: AsyncSession, person_ids: Sequence[int], limit: int = 20) -> dict[int, list[Any]]:
    """The newest ``limit`` messages of each person, newest first, in ONE statement whatever the number of
    people: a UNION ALL of per-person index range scans (``ix_interactions_person_history``), so a person with
    thousands of messages costs the same as one with twenty."""
    found: dict[int, list[Any]] = {p: [] for p in person_ids}
    ids = sorted(set(person_ids))
    if not ids:
        return found
    cols = (Interaction.id, Interaction.person_id, Interaction.direction, Interaction.platform, Interaction.text,
            Interaction.occurred_at, Interaction.turn_id)
    parts = [select(*cols).where(Interaction.person_id == pid)
             .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit).subquery()
             for pid in ids]
    query = union_all(*(select(*part.c) for part in parts)) if len(parts) > 1 else select(*parts[0].c)
    for row in (await session.execute(query)).all():
        found[row.person_id].append(row)
    for rows in found.values():
        rows.sort(key=lambda r: (r.occurred_at, r.id), reverse=True)
    return found


async def list_users(db: Database, brand_id: int) -> list[User]:
    async with db.read() as session:
        return list((await session.execute(select(User).where(User.brand_id == brand_id).order_by(User.id))).scalars())


async def list_keys(db: Database, brand_id: int) -> list[ApiKey]:
    async with db.read() as session:
        return list((await session.execute(
            select(ApiKey).where(ApiKey.brand_id == brand_id).order_by(ApiKey.id.desc()))).scalars())


async def set_role(db: Database, actor: Principal, user_id: int, role: str) -> None:
    if role not in ROLES:
        raise ValidationFailed.field("role", f"choose from {', '.join(ROLES)}")
    if user_id == actor.id:
        raise ValidationFailed.field("role", "you cannot change your own role")
    async with db.write() as session:
        done = await session.execute(update(User).where(User.id == user_id, User.brand_id == actor.brand_id)
                                     .values(role=role))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound(f"no user {user_id}")
        await record(session, actor, "user.role_changed", "user", user_id, role=role)


async def set_disabled(db: Database, actor: Principal, user_id: int, disabled: bool) -> None:
    if user_id == actor.id and disabled:
        raise ValidationFailed.field("user", "you cannot disable yourself")
    async with db.write() as session:
        done = await session.execute(update(User).where(User.id == user_id, User.brand_id == actor.brand_id)
                                     .values(disabled=disabled))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound(f"no user {user_id}")
        await record(session, actor, "user.disabled" if disabled else "user.enabled", "user", user_id)
