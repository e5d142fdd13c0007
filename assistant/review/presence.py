"""Who else has a turn open on the queue page, and whether they are editing it.

The page beats every few seconds while a person is in focus (``editing`` once the reply box changed); anyone
seen on the same turn within ``FRESH`` is shown. Plain functions of a ``Connection``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from assistant.db.base import utcnow
from assistant.db.presence import Presence, upsert_presence
from assistant.db.tenancy import User
from assistant.db.turns import Turn
from assistant.errors import NotFound

FRESH = dt.timedelta(seconds=30)
"""A reviewer counts as present this long after their last heartbeat (the page beats every 10 s)."""
FORGOTTEN = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Present:
    name: str
    editing: bool
    seen_at: dt.datetime


def beat(conn: Connection, brand_id: int, user_id: int, turn_id: int, editing: bool) -> list[Present]:
    """Record that this reviewer has the turn open (or is editing it) and answer who else does."""
    turn = conn.execute(select(Turn.id).where(Turn.id == turn_id, Turn.brand_id == brand_id)).first()
    if turn is None:
        raise NotFound("This person is not in your queue.")
    now = utcnow()
    upsert_presence(conn, {"turn_id": turn_id, "user_id": user_id, "brand_id": brand_id, "editing": editing,
                           "seen_at": now})
    conn.execute(delete(Presence).where(Presence.brand_id == brand_id, Presence.seen_at < now - FORGOTTEN))
    return others(conn, brand_id, user_id, turn_id, now=now)


def others(conn: Connection, brand_id: int, user_id: int, turn_id: int, *,
           now: dt.datetime | None = None) -> list[Present]:
    since = (now or utcnow()) - FRESH
    rows = conn.execute(select(User.display_name, User.email, Presence.editing, Presence.seen_at)
                        .join(User, User.id == Presence.user_id)
                        .where(Presence.brand_id == brand_id, Presence.turn_id == turn_id,
                               Presence.user_id != user_id, Presence.seen_at >= since)
                        .order_by(Presence.seen_at.desc())).all()
    return [Present(r.display_name or r.email, r.editing, r.seen_at) for r in rows]


def being_edited(conn: Connection, turn_id: int) -> bool:
    """Someone has changed the turn's reply box and is still on it (seen within ``FRESH``): its draft is in a
    reviewer's hands, and nothing should replace it under them."""
    since = utcnow() - FRESH
    return conn.execute(select(Presence.turn_id).where(Presence.turn_id == turn_id, Presence.editing.is_(True),
                                                       Presence.seen_at >= since).limit(1)).first() is not None


def sentence(present: list[Present]) -> str:
    """What the page says about the others: "Maria is editing this reply." / "Jo and Sam have it open." """
    if not present:
        return ""
    editing = [p.name for p in present if p.editing]
    viewing = [p.name for p in present if not p.editing]
    parts = []
    if editing:
        parts.append(f"{_names(editing)} {'is' if len(editing) == 1 else 'are'} editing this reply")
    if viewing:
        parts.append(f"{_names(viewing)} {'has' if len(viewing) == 1 else 'have'} it open")
    return "; ".join(parts) + "."


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
