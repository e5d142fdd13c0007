"""Writing audit events, inside the caller's transaction so an action and its record land together.

The log names its actors by what it stores of them (``Actor``), so it needs nothing of ``auth``, which
records its own events here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from assistant.db.audit import AuditEvent
from assistant.db.base import utcnow
from assistant.db.bulk import executemany

_EVENTS = AuditEvent.__table__


class Actor(Protocol):
    """Who did it: a user, an API key or the system (``auth.principal.Principal`` is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> int: ...
    @property
    def brand_id(self) -> int: ...
    @property
    def label(self) -> str: ...


def record(conn: Connection, actor: Actor, action: str, subject_type: str, subject_id: int | None, *,
           brand_id: int | None = None, **data: Any) -> None:
    """One event in the connection's transaction."""
    conn.execute(_EVENTS.insert(), _row(actor, action, subject_type, subject_id, brand_id, data))


def record_many(conn: Connection, events: Sequence[tuple[Actor, str, str, int | None, dict[str, Any]]], *,
                brand_id: int | None = None) -> None:
    """Many events in one statement (``(actor, action, subject_type, subject_id, data)`` each): one by one
    they were most of a batch of outbox confirmations' time."""
    executemany(conn, _EVENTS, [_row(actor, action, subject_type, subject_id, brand_id, data)
                                for actor, action, subject_type, subject_id, data in events])


def _row(actor: Actor, action: str, subject_type: str, subject_id: int | None, brand_id: int | None,
         data: dict[str, Any]) -> dict[str, Any]:
    return {"brand_id": brand_id if brand_id is not None else (actor.brand_id or None), "actor_type": actor.kind,
            "actor_id": actor.id or None, "actor_label": actor.label, "action": action,
            "subject_type": subject_type, "subject_id": subject_id, "data": data, "created_at": utcnow()}
