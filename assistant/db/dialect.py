"""What differs between SQLite and PostgreSQL, behind names that say what the caller needs, so domain code
never asks which database it runs on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

_INSERT_FOR = {"postgresql": pg_insert, "sqlite": sqlite_insert}
_IGNORING: dict[tuple[str, str], Any] = {}


def insert_ignoring_duplicates(conn: Connection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` into ``table``: a row that would break a unique key is skipped.
    One statement object per dialect and table, so compiled plans (``bulk.executemany``) are reused."""
    key = (conn.dialect.name, table.name)
    statement = _IGNORING.get(key)
    if statement is None:
        statement = _IGNORING[key] = _INSERT_FOR[conn.dialect.name](table).on_conflict_do_nothing()
    return statement


def writes_are_serial(conn: Connection) -> bool:
    """True when this write transaction holds the database's only write lock (SQLite's ``BEGIN IMMEDIATE``):
    no other writer can insert the same keys before it commits, so what it inserted is what is stored."""
    return conn.dialect.name == "sqlite"
