"""Who has a turn open on the queue page, and whether they are editing its reply: one row per reviewer and
turn, refreshed by the page's heartbeat. A table rather than process memory, so reviewers served by different
``serve`` processes (or machines, on PostgreSQL) see each other. Owned by ``assistant.review.presence``.

No foreign keys: the rows are a few seconds' worth of signal, pruned as they age, and must never stand in the
way of erasing a person or a turn."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Connection, Index
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime


class Presence(Base):
    __tablename__ = "presence"
    __table_args__ = (Index("ix_presence_brand_id_seen_at", "brand_id", "seen_at"),)
    turn_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    brand_id: Mapped[int] = mapped_column(BigId)
    editing: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


def upsert_presence(conn: Connection, row: dict[str, Any]) -> None:
    """Insert or refresh one reviewer's presence on a turn (the dialects spell the upsert differently)."""
    table = Presence.__table__
    insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(table).values(**row)
    conn.execute(insert.on_conflict_do_update(index_elements=[table.c.turn_id, table.c.user_id],
                                              set_={"editing": row["editing"], "seen_at": row["seen_at"],
                                                    "brand_id": row["brand_id"]}))
