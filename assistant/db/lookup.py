"""Finding rows by a list of values (ids, or ``(platform, value)`` keys such as handles and external ids), many
at a time.

A list is one parameter on PostgreSQL (``column = ANY(:values)``, an array): one statement, whatever its
length, and one statement text, so asyncpg's prepared statement is reused. On SQLite each value is a parameter
of ``IN (...)``, and lists go in chunks that keep every statement well under its bound-parameter limit.
Keys are grouped by platform and looked up one platform per statement: SQLite uses a unique index on
``(brand_id, platform, value)`` for ``IN`` on one column but not for row values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, and_, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType

CHUNK = 400
"""Values per ``IN (...)`` on SQLite: large enough that a 1,000-mention batch takes a few statements."""

V = TypeVar("V")


class any_of(ColumnElement[bool]):
    """``column`` is one of the list bound as ``name``: ``= ANY(:name)`` with an array on PostgreSQL, ``IN
    (:name_1, ...)`` on SQLite.

    ``joined`` (PostgreSQL): ``IN (SELECT unnest(:name))``, the list as rows joined to the table. asyncpg
    prepares every statement, and after five runs PostgreSQL may keep a generic plan, made for an array of ten
    values; on a small table that plan can be a scan with ``= ANY`` as a filter, which compares every row with
    every value (PostgreSQL hashes a long list only when it is a constant): 5,000 queued jobs against 333 turn
    ids took 6-12 ms instead of 0.3. Joined, the list probes the index or is hashed. Not the default: tried on
    every lookup, the handles' and mentions' keys got nested loops that filtered their joins instead."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string),
                           ("joined", InternalTraversal.dp_boolean)]
    type = NullType()

    def __init__(self, column: Any, name: str, *, joined: bool = False) -> None:
        self.column, self.name, self.joined = column, name, joined


@compiles(any_of)
def _any_of(element: any_of, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(any_of, "postgresql")
def _any_of_postgresql(element: any_of, compiler: Any, **kw: Any) -> str:
    values = bindparam(element.name, type_=ARRAY(element.column.type))
    if element.joined:
        return compiler.process(element.column.in_(select(func.unnest(values)).scalar_subquery()), **kw)
    return compiler.process(element.column == any_(values), **kw)


def list_chunks(conn: Connection, values: Sequence[V], chunk: int = CHUNK) -> Iterator[Sequence[V]]:
    """The lists to bind to an ``any_of`` parameter, one statement each: all of ``values`` at once on
    PostgreSQL, slices of ``chunk`` on SQLite; none for no values."""
    if conn.dialect.name == "postgresql":
        if values:
            yield values
        return
    for start in range(0, len(values), chunk):
        yield values[start:start + chunk]


def platform_keys(platform_column: Any, value_column: Any) -> ColumnElement[bool]:
    """The condition of a lookup statement: ``platform = :platform AND value`` among ``:values``."""
    return and_(platform_column == bindparam("platform"), any_of(value_column, "values"))


def rows_by_platform_keys(conn: Connection, statement: Any, keys: Iterable[tuple[str, str]], *,
                          chunk: int = CHUNK, **params: Any) -> Iterator[Row[Any]]:
    """The rows ``statement`` (whose ``where`` holds ``platform_keys``) finds for ``keys``; ``params`` fills
    its other bind parameters, such as ``brand_id``. Duplicate keys are looked up once."""
    grouped: dict[str, list[str]] = {}
    for platform, value in dict.fromkeys(keys):
        grouped.setdefault(platform, []).append(value)
    for platform, values in grouped.items():
        for part in list_chunks(conn, values, chunk):
            yield from conn.execute(statement, {**params, "platform": platform, "values": part})
