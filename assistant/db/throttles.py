"""Attempt counters shared by every process (sign-in, failed authentication, page rate limits).

A row per key (a hashed label such as "sign-in from this address for this account"); the rules that read and
move it live in ``assistant/auth/throttle.py``. Rows are made with an insert that ignores an existing key, so
two processes creating the same counter at once both go on to lock and read it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Integer, String
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, UTCDateTime


class Throttle(Base):
    __tablename__ = "throttles"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts (or failures) counted since ``since``."""
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    """No attempt under this key is allowed before this time."""


_NEW = {"postgresql": pg_insert(Throttle.__table__).on_conflict_do_nothing(),
        "sqlite": sqlite_insert(Throttle.__table__).on_conflict_do_nothing()}


def ensure_rows(conn: Connection, keys: list[str], now: dt.datetime) -> None:
    """Counters for ``keys`` exist afterwards (new ones at zero); existing ones are left as they are."""
    conn.execute(_NEW[conn.dialect.name], [{"key": k, "count": 0, "since": now, "next_at": now} for k in keys])
