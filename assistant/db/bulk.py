"""Bulk writes that keep both databases fast. Used by ingest, import and the jobs queue.

SQLite: rows go to ``sqlite3``'s own ``executemany``, ids are given under the write lock.
PostgreSQL: plain inserts are one statement either way, instead of SQLAlchemy's multi-row INSERT with its per-row
parameter handling: up to ``UNNEST_MAX_ROWS`` rows one ``INSERT ... SELECT ... FROM unnest(...) RETURNING id``
(a column array per column; ids come back with it), more rows one ``COPY`` through asyncpg (ids taken from the
table's sequence in one statement first). An update of many rows is one ``UPDATE ... FROM unnest(...)`` that
locks its rows in key order first, with a column array per parameter, instead of a statement per row.
"""

from __future__ import annotations

import datetime as dt
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, String, Table, column, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse
from sqlalchemy.util import await_

from assistant.db.base import UTCDateTime, naive_utc
from assistant.db.lookup import any_of

COPY_MIN_ROWS = 8
"""From this many rows on, an UPDATE of many rows is set-based (PostgreSQL): one statement of column arrays."""

UNNEST_MAX_ROWS = 50
"""PostgreSQL: inserts of up to this many rows (a group commit's) are one ``INSERT ... SELECT ... FROM unnest(...)
RETURNING id``, ids included, in one round trip; larger ones (a 1,000-mention batch's) are ``COPY``, after the ids
from the sequence when the caller needs them. This process's CPU per insert of interactions (16 columns), unnest /
nextval+COPY / SQLAlchemy's multi-row INSERT: 1 row 0.14 / 0.22 / 0.17 ms, 20 rows 0.23 / 0.29 / 0.36 ms, 50 rows
0.32 / 0.32 / 0.55 ms, 100 rows 0.51 / 0.43 / 0.91 ms."""


def _utc_text(value: dt.datetime | None) -> str | None:
    """What ``UTCDateTime`` stores on SQLite (naive UTC, SQLAlchemy's DATETIME text), in one call: the aware
    text without its "+00:00" (faster than ``replace(tzinfo=None)`` first)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(dt.timezone.utc).isoformat(" ", "microseconds")[:-6]


def _utc_naive(value: dt.datetime | None) -> dt.datetime | None:
    """What ``UTCDateTime`` binds on PostgreSQL (naive UTC), in one call: its processor through SQLAlchemy's
    TypeDecorator was a tenth of a 1,000-mention batch's Python time."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return naive_utc(value)


_PLANS: dict[tuple[str, Any, tuple[str, ...]], tuple[str, list[tuple[str | None, Any, Any]]]] = {}


def statement_plan(conn: Connection, statement: Any,
                   keys: tuple[str, ...]) -> tuple[str, list[tuple[str | None, Any, Any]]]:
    """The SQL text of ``statement`` and, per positional parameter, the row key (or a constant) and the bind
    processor of its type, exactly as SQLAlchemy would apply it (kept per dialect, statement and keys)."""
    sqlite = conn.dialect.name == "sqlite"
    cache_key = (conn.dialect.name, statement, keys)
    plan = _PLANS.get(cache_key)
    if plan is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys))
        steps: list[tuple[str | None, Any, Any]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            processor = _utc_text if sqlite and isinstance(bind.type, UTCDateTime) else \
                bind.type.bind_processor(conn.dialect)
            if name in keys:
                steps.append((name, processor, None))
            else:  # a literal of the statement, such as status="drafting"
                value = bind.effective_value
                steps.append((None, None, processor(value) if processor else value))
        plan = _PLANS[cache_key] = (compiled.string, steps)
    return plan


def executemany(conn: Connection, statement: Table | Any, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)``, where ``statement`` is a table to insert into or a statement of bind
    parameters.

    On SQLite, the statement is compiled once per set of keys and the rows go straight to ``sqlite3``'s
    ``executemany`` as tuples, each value through its type's own bind processor: SQLAlchemy's per-row
    parameter handling cost several times SQLite's own work for a 1,000-mention batch."""
    if not rows:
        return
    keys = tuple(rows[0])
    compiled = _insert_for(statement, keys) if isinstance(statement, Table) else statement
    if conn.dialect.name == "postgresql" and isinstance(statement, Table) and compiled is not None:
        if len(rows) > UNNEST_MAX_ROWS:
            _copy(conn, statement, keys, rows)
        else:
            _insert_unnest(conn, statement, keys, rows, returning=False)
        return
    if conn.dialect.name != "sqlite" or compiled is None:
        conn.execute(statement.insert() if isinstance(statement, Table) else statement, rows)
        return
    sql, steps = statement_plan(conn, compiled, keys)
    names = [key for key, _, _ in steps if key is not None]
    getter = itemgetter(*names)
    processed = [(n, processor) for n, (_, processor, _) in enumerate(s for s in steps if s[0] is not None)
                 if processor is not None]
    constants = [(n, constant) for n, (key, _, constant) in enumerate(steps) if key is None]
    times: dict[dt.datetime, str | None] = {}
    converted: list[Any] = []
    for row in rows:
        values = list(getter(row)) if len(names) > 1 else [getter(row)]
        for n, processor in processed:
            value = values[n]
            if processor is _utc_text and value is not None:
                text = times.get(value)
                if text is None:
                    text = times[value] = _utc_text(value)
                values[n] = text
            else:
                values[n] = processor(value)
        for n, constant in constants:
            values.insert(n, constant)
        converted.append(tuple(values))
    conn.exec_driver_sql(sql, converted)


def update_rows(conn: Connection, statement: Any, rows: list[dict[str, Any]], *, key: str) -> None:
    """``executemany(conn, statement, rows)`` for an UPDATE of one row per parameter row, found by the table's
    primary key (the parameter ``key``; at most one parameter row per key).

    The rows are locked in key order before any is changed, so two transactions updating overlapping rows
    (PostgreSQL) wait for each other in turn and never deadlock; on SQLite the one writer needs no order. On
    PostgreSQL, from ``COPY_MIN_ROWS`` rows on, the lock and the update are one statement each
    (``SELECT ... ORDER BY key FOR UPDATE``, then ``UPDATE ... FROM unnest(:key, :a, ...)``, every parameter
    an array of the rows' values) instead of one per row: a 1,000-mention batch's people and turns."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
        executemany(conn, statement, sorted(rows, key=itemgetter(key)))
        return
    keys = tuple(rows[0])
    update, utc = _update_plan(conn, statement, keys, key)
    params = {name: [_utc_naive(row[name]) for row in rows] if name in utc else [row[name] for row in rows]
              for name in keys}
    params["locked_keys"] = sorted(params[key])
    conn.execute(update, params)


_UPDATE_PLANS: dict[tuple[Any, tuple[str, ...], str], tuple[Any, set[str]]] = {}


def _update_plan(conn: Connection, statement: Any, keys: tuple[str, ...], key: str) -> tuple[Any, set[str]]:
    """The set-based form of ``statement`` that first locks its rows in key order (PostgreSQL), and the parameters
    holding UTC times (converted by ``_utc_naive``): each bound parameter among ``keys`` becomes the column of that
    name of ``unnest(:name, ...) AS rows(...)``, typed as the statement types it; ``locked_keys`` is the sorted
    keys."""
    cache_key = (statement, keys, key)
    plan = _UPDATE_PLANS.get(cache_key)
    if plan is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=[])
        types = {name: compiled.binds[name].type for name in keys}
        utc = {name for name in keys if isinstance(types[name], UTCDateTime)}
        types.update({name: types[name].impl for name in utc})
        given = func.unnest(*[BindParameter(name, type_=ARRAY(types[name], dimensions=1)) for name in keys]
                            ).table_valued(*[column(name, types[name]) for name in keys]).render_derived(name="rows")

        def from_rows(element: Any) -> Any:
            if isinstance(element, BindParameter) and element.key in keys:
                return given.c[element.key]
            return None

        primary = statement.table.primary_key.columns.values()[0]
        locked = (select(primary).where(any_of(primary, "locked_keys")).order_by(primary).with_for_update()
                  .cte("locked").prefix_with("MATERIALIZED"))
        update = replacement_traverse(statement, {}, from_rows).where(locked.c[primary.name] == given.c[key])
        plan = _UPDATE_PLANS[cache_key] = (update, utc)
    return plan


_INSERTS: dict[tuple[str, tuple[str, ...]], Any] = {}


def _insert_for(table: Table, keys: tuple[str, ...]) -> Any:
    """``table.insert()`` to compile for rows with ``keys``; None when a Python-side column default would be
    missing (SQLAlchemy fills those in, so such rows take the ordinary path)."""
    cache_key = (table.name, keys)
    if cache_key not in _INSERTS:
        missing = [c.name for c in table.columns if c.default is not None and c.name not in keys]
        _INSERTS[cache_key] = None if missing else table.insert()
    return _INSERTS[cache_key]


def insert_returning_ids(conn: Connection, table: Any, rows: list[dict[str, Any]],
                              first_id: int | None = None) -> list[int]:
    """Insert ``rows`` and answer their new ids, in order, in a single executemany.

    On SQLite, SQLAlchemy's ``RETURNING ... sort_by_parameter_order`` falls back to one statement per row (a
    thread hop each through aiosqlite: two thirds of a 1,000-mention batch's time). Writes there run in
    ``BEGIN IMMEDIATE``, which holds the file's only write lock, so the ids after ``MAX(id)`` are ours to give
    (``first_id``, when the caller already knows it). Each row gets its ``id``.
    """
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        start = first_id if first_id is not None else int(conn.scalar(_max_id(table)) or 0) + 1
        ids = list(range(start, start + len(rows)))
        for row, new_id in zip(rows, ids):
            row["id"] = new_id
        executemany(conn, table, rows)
        return ids
    if _insert_for(table, tuple(rows[0]) + ("id",)) is not None:
        if len(rows) > UNNEST_MAX_ROWS:
            ids = list(conn.execute(_NEXT_IDS, {"table": table.name, "n": len(rows)}).scalars())
            for row, new_id in zip(rows, ids):
                row["id"] = new_id
            _copy(conn, table, tuple(rows[0]), rows)
            return ids
        ids = _insert_unnest(conn, table, tuple(rows[0]), rows, returning=True)
        for row, new_id in zip(rows, ids):
            row["id"] = new_id
        return ids
    ids = list(conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows).scalars())
    for row, new_id in zip(rows, ids):
        row["id"] = new_id
    return ids


_NEXT_IDS = text("SELECT nextval((SELECT pg_get_serial_sequence(:table, 'id')::regclass)) FROM generate_series(1, :n)")
"""The sequence is looked up once per statement (a subquery): as an argument of ``nextval`` it was looked up
once per row, 5 ms of every 1,000 ids."""

_MAX_IDS: dict[str, Any] = {}


def _max_id(table: Any) -> Any:
    """``SELECT max(id)`` of ``table``, built once per table (building it was a tenth of a single-mention ingest
    transaction's Python calls)."""
    found = _MAX_IDS.get(table.name)
    if found is None:
        found = _MAX_IDS[table.name] = select(func.max(table.c.id))
    return found


_COPY_PLANS: dict[tuple[str, tuple[str, ...]], list[tuple[str, Any]]] = {}


def _copy_plan(conn: Connection, table: Table, keys: tuple[str, ...]) -> list[tuple[str, Any]]:
    """Per key, the function that converts a value to what asyncpg encodes for its column (None: as it is)."""
    plan = _COPY_PLANS.get((table.name, keys))
    if plan is None:
        plan = _COPY_PLANS[(table.name, keys)] = [
            (key, _utc_naive if isinstance(table.c[key].type, UTCDateTime) else table.c[key].type.bind_processor(
                conn.dialect)) for key in keys]
    return plan


_UNNEST_SQL: dict[tuple[str, tuple[str, ...], bool], str] = {}


def _unnest_sql(conn: Connection, table: Table, keys: tuple[str, ...], returning: bool) -> str:
    """``INSERT INTO table (keys) SELECT keys FROM unnest($1::type[], ...) WITH ORDINALITY ... ORDER BY ord``
    (with ``RETURNING id``): one statement text per table and keys, so asyncpg prepares it once. Text columns are
    given as ``text[]``: a cast to ``varchar(n)`` would cut a long value short, where the insert refuses it."""
    cache_key = (table.name, keys, returning)
    sql = _UNNEST_SQL.get(cache_key)
    if sql is None:
        preparer = conn.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(key) for key in keys)
        types = ["text" if isinstance(table.c[key].type, String) else table.c[key].type.compile(dialect=conn.dialect)
                 for key in keys]
        arrays = ", ".join(f"${n}::{name}[]" for n, name in enumerate(types, 1))
        given = ", ".join(f"c{n}" for n in range(len(keys)))
        sql = _UNNEST_SQL[cache_key] = (
            f"INSERT INTO {preparer.format_table(table)} ({columns}) SELECT {given} FROM unnest({arrays}) "
            f"WITH ORDINALITY AS given({given}, ord) ORDER BY ord" + (" RETURNING id" if returning else ""))
    return sql


def _insert_unnest(conn: Connection, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]], *,
                   returning: bool) -> list[int]:
    """PostgreSQL: the rows into ``table`` with one statement whose every parameter is an array of one column's
    values, answering the new ids in the rows' order when ``returning``. The rows are inserted in their order, so
    the sequence gives them ascending ids (as SQLAlchemy's own ``sort_by_parameter_order`` relies on): the ids
    come back sorted, whatever order RETURNING hands them in."""
    columns: list[list[Any]] = []
    for key, processor in _copy_plan(conn, table, keys):
        values = [row[key] for row in rows]
        columns.append([processor(v) for v in values] if processor is not None else values)
    result = conn.exec_driver_sql(_unnest_sql(conn, table, keys, returning), tuple(columns))
    return sorted(result.scalars()) if returning else []


def _copy(conn: Connection, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: the rows into ``table`` with one ``COPY ... FROM STDIN`` (binary) in the connection's open
    transaction, each value as its type's own bind processor converts it."""
    plan = _copy_plan(conn, table, keys)
    getter = itemgetter(*keys)
    processors = [(n, p) for n, (_, p) in enumerate(plan) if p is not None]
    records: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(getter(row)) if len(keys) > 1 else [getter(row)]
        for n, processor in processors:
            values[n] = processor(values[n])
        records.append(tuple(values))
    adapted: Any = conn.connection.dbapi_connection
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        try:
            if adapted._transaction is None:  # SQLAlchemy's asyncpg adapter begins lazily, at the first statement
                await_(adapted._start_transaction())
            await_(adapted._connection.copy_records_to_table(table.name, records=records, columns=list(keys)))
        except Exception as error:  # the adapter's own translation into DBAPI errors (unique violation, ...)
            adapted._handle_exception(error)
    except dbapi_error as exc:
        raise DBAPIError.instance(f"COPY {table.name} ({', '.join(keys)})", None, exc, dbapi_error) from exc
