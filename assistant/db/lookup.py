"""Finding rows by ``(platform, value)`` keys (handles, external ids), many at a time.

Keys are grouped by platform and looked up one platform and one chunk of values per statement: SQLite uses a
unique index on ``(brand_id, platform, value)`` for ``IN`` on one column but not for row values, and chunks keep
every statement well under both databases' bound-parameter limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, bindparam

CHUNK = 400
"""Values per ``IN (...)``: large enough that a 1,000-mention batch takes a few statements."""


def platform_keys(platform_column: Any, value_column: Any) -> ColumnElement[bool]:
    """The condition of a lookup statement: ``platform = :platform AND value IN :values``."""
    return and_(platform_column == bindparam("platform"), value_column.in_(bindparam("values", expanding=True)))


def rows_by_platform_keys(conn: Connection, statement: Any, keys: Iterable[tuple[str, str]], *,
                          chunk: int = CHUNK, **params: Any) -> Iterator[Row[Any]]:
    """The rows ``statement`` (whose ``where`` holds ``platform_keys``) finds for ``keys``; ``params`` fills
    its other bind parameters, such as ``brand_id``. Duplicate keys are looked up once."""
    grouped: dict[str, list[str]] = {}
    for platform, value in dict.fromkeys(keys):
        grouped.setdefault(platform, []).append(value)
    for platform, values in grouped.items():
        for start in range(0, len(values), chunk):
            yield from conn.execute(statement, {**params, "platform": platform, "values": values[start:start + chunk]})
