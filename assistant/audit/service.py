"""Writing audit events, inside the caller's transaction so an action and its record land together."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.auth.principal import Principal
from assistant.db.audit import AuditEvent
from assistant.db.base import utcnow


async def record(session: AsyncSession, actor: Principal, action: str, subject_type: str,
                 subject_id: int | None, *, brand_id: int | None = None, **data: Any) -> None:
    await session.execute(insert(AuditEvent).values(
        brand_id=brand_id if brand_id is not None else (actor.brand_id or None),
        actor_type=actor.kind, actor_id=actor.id or None, actor_label=actor.label,
        action=action, subject_type=subject_type, subject_id=subject_id, data=data, created_at=utcnow()))


def record_on(conn: Connection, actor: Principal, action: str, subject_type: str, subject_id: int | None, *,
              brand_id: int | None = None, **data: Any) -> None:
    """``record`` on a plain connection, in its transaction."""
    conn.execute(insert(AuditEvent).values(
        brand_id=brand_id if brand_id is not None else (actor.brand_id or None),
        actor_type=actor.kind, actor_id=actor.id or None, actor_label=actor.label,
        action=action, subject_type=subject_type, subject_id=subject_id, data=data, created_at=utcnow()))
