"""Reads on a hot path (a person's history page): a statement built once, its rows as plain tuples.

The statement is compiled once and runs straight on the driver in the caller's transaction, as ``bulk`` does
for inserts: on SQLite on ``sqlite3``, on PostgreSQL on the asyncpg connection itself (its prepared
statements), with the driver's errors turned into SQLAlchemy's as its execution would
(a dead connection is dropped from the pool, and ``Database.run_read`` runs the read again). Only the columns
whose type needs it are converted (times: ``UTCDateTime``). SQLAlchemy's execution (an execution context, a
result object, a processor per row) cost several times the database's own work for a history page: on SQLite
190 µs of CPU per page, against about 60 µs this way; on PostgreSQL 578 µs per read, against 273 µs (a slow
machine's figures, the pool's turn included).

Statements given here must be module-level constants (their bind parameters filled by ``params``): each one's
compiled form is kept for the life of the process.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_

from assistant.db.base import UTCDateTime, aware_utc
from assistant.db.bulk import statement_plan

_CONVERTERS: dict[tuple[str, Any], list[tuple[int, Callable[[Any], Any]]]] = {}


def _utc_time(value: str | None) -> dt.datetime | None:
    """A ``UTCDateTime`` as SQLite stores it (naive UTC text), aware: parsed with its offset appended, which
    gives ``timezone.utc`` itself in a fifth of the time ``replace(tzinfo=...)`` takes afterwards (0.4 against
    2.1 µs per value here; a history page reads one per row)."""
    return None if value is None else dt.datetime.fromisoformat(value + "+00:00")


def _utc_aware(value: dt.datetime | None) -> dt.datetime | None:
    """A ``UTCDateTime`` as PostgreSQL's driver gives it (naive UTC), aware."""
    return None if value is None else aware_utc(value)


def _converters(conn: Connection, statement: Any) -> list[tuple[int, Callable[[Any], Any]]]:
    """Per result column that needs one, its position and the conversion SQLAlchemy would apply."""
    found = _CONVERTERS.get((conn.dialect.name, statement))
    if found is None:
        found = []
        for n, column in enumerate(statement.selected_columns):
            if isinstance(column.type, UTCDateTime):
                found.append((n, _utc_time if conn.dialect.name == "sqlite" else _utc_aware))
            elif (processor := column.type._cached_result_processor(conn.dialect, None)) is not None:
                found.append((n, processor))
        _CONVERTERS[(conn.dialect.name, statement)] = found
    return found


def rows(conn: Connection, statement: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """``conn.execute(statement, params).all()``, as tuples."""
    sql, steps = statement_plan(conn, statement, tuple(params))
    args = [constant if key is None else params[key] if processor is None else processor(params[key])
            for key, processor, constant in steps]
    raw = conn.connection.dbapi_connection
    assert raw is not None
    found = raw.execute(sql, args).fetchall() if conn.dialect.name == "sqlite" else _driver_rows(conn, raw, sql, args)
    converters = _converters(conn, statement)
    if not converters or not found:
        return [tuple(row) for row in found]
    converted = []
    for row in found:
        values = list(row)
        for n, convert in converters:
            values[n] = convert(values[n])
        converted.append(tuple(values))
    return converted


def _driver_rows(conn: Connection, raw: Any, sql: str, args: list[Any]) -> list[Any]:
    """PostgreSQL: the rows straight from asyncpg (its own prepared statements), past the adapter's DB-API cursor
    (its lock, statement cache, description and row count: a tenth of a history read's CPU); the driver's errors
    raised as SQLAlchemy's execution raises them (``DBAPIError``, the connection invalidated when it is gone)."""
    driver = raw.driver_connection
    try:
        return await_(driver.fetch(sql, *args))
    except Exception as exc:
        gone = driver.is_closed()
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, args, exc, Exception, connection_invalidated=gone,
                                  dialect=conn.dialect) from exc
