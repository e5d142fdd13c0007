"""Row locks, the one dialect difference domain rules meet: they say which rows they will change, and this
module says how each database keeps concurrent writers off them.

PostgreSQL runs transactions side by side, so a rule that reads rows to change them locks them
(``FOR UPDATE``), and claimers of shared work skip each other's rows (``FOR UPDATE SKIP LOCKED``). SQLite has
one writer at a time: every write transaction holds the file's write lock from ``BEGIN IMMEDIATE`` on
(``engine.Database.run_write``), so the clause is not needed there, and SQLAlchemy compiles it to nothing.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select

S = TypeVar("S", bound=Select)  # type: ignore[type-arg]


def for_update(query: S) -> S:
    """Rows this transaction reads in order to change them: nobody else changes them until it ends."""
    return query.with_for_update()


def claimable(query: S) -> S:
    """Shared work (jobs, outbox replies) a claimer takes: rows another claimer holds are skipped, not waited
    for, so concurrent claimers get different rows."""
    return query.with_for_update(skip_locked=True)
