"""The bulk paths of ``assistant/db/bulk.py`` on the database under test (PostgreSQL: INSERT from unnest, COPY
and set-based updates; SQLite: ``executemany`` with ids given under the write lock): rows stored exactly, ids in
order, a unique violation is SQLAlchemy's ``IntegrityError`` (ingest retries on it) and leaves nothing of its
transaction, each updated row gets its own values, and writers updating the same rows at once wait in turn."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import Connection, Integer, String, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.db import Database
from assistant.db.base import UTCDateTime
from assistant.db.bulk import COPY_MIN_ROWS, UNNEST_MAX_ROWS, executemany, insert_returning_ids, update_rows
from assistant.db.people import Interaction, Person
from tests.support.factories import Factory

AT = dt.datetime(2026, 11, 20, 12, 30, 15, 123456, tzinfo=dt.timezone.utc)


def people_rows(brand_id: int, n: int) -> list[dict]:  # type: ignore[type-arg]
    return [{"brand_id": brand_id, "display_name": f"Person {i} \u00e9\u263a", "do_not_reply": False,
             "followers": i or None, "first_seen_at": AT, "last_seen_at": AT, "mention_count": 1, "reply_count": 0,
             "created_at": AT} for i in range(n)]


def interaction_rows(brand_id: int, person_ids: list[int], prefix: str) -> list[dict]:  # type: ignore[type-arg]
    return [{"brand_id": brand_id, "person_id": pid, "direction": "inbound", "platform": "x",
             "external_id": f"{prefix}{i}", "text": f"tab\there, quote \" and newline\n{i}", "occurred_at": AT,
             "received_at": AT, "raw": {"n": i, "nested": ["a", None]} if i % 2 else None}
            for i, pid in enumerate(person_ids)]


@pytest.mark.parametrize("n", [2, UNNEST_MAX_ROWS, UNNEST_MAX_ROWS + 1])  # INSERT from unnest, then COPY
async def test_bulk_rows_come_back_exactly_with_their_ids_in_order(db: Database, factory: Factory, n: int) -> None:
    kit = await factory.brand()

    def store(conn: Connection) -> tuple[list[int], list[int]]:
        ids = insert_returning_ids(conn, Person.__table__, people_rows(kit.id, n))
        rows = interaction_rows(kit.id, ids, "e")
        executemany(conn, Interaction.__table__, rows)
        return ids, [r.get("id") for r in rows]

    ids, _ = await db.run_write(store)
    assert ids == sorted(ids) and len(set(ids)) == n

    def read(conn: Connection) -> tuple[list, list]:  # type: ignore[type-arg]
        people = conn.execute(select(Person.id, Person.display_name, Person.followers, Person.first_seen_at)
                              .order_by(Person.id)).all()
        said = conn.execute(select(Interaction.person_id, Interaction.external_id, Interaction.text,
                                   Interaction.occurred_at, Interaction.raw).order_by(Interaction.id)).all()
        return people, said

    people, said = await db.run_read(read)
    assert [p.id for p in people] == ids
    assert [p.display_name for p in people] == [f"Person {i} \u00e9\u263a" for i in range(n)]
    assert people[0].followers is None and people[-1].followers == n - 1
    assert all(p.first_seen_at == AT for p in people)
    assert [(s.person_id, s.external_id) for s in said] == [(pid, f"e{i}") for i, pid in enumerate(ids)]
    assert said[1].text == "tab\there, quote \" and newline\n1" and said[1].occurred_at == AT
    assert said[0].raw is None and said[1].raw == {"n": 1, "nested": ["a", None]}

    more = await db.run_write(lambda conn: insert_returning_ids(conn, Person.__table__, people_rows(kit.id, n)))
    assert min(more) > max(ids)  # the sequence (or MAX(id) under the write lock) moved on


async def test_a_duplicate_in_a_bulk_insert_is_an_integrity_error_and_stores_nothing(
        db: Database, factory: Factory) -> None:
    kit = await factory.brand()
    ids = await db.run_write(lambda conn: insert_returning_ids(conn, Person.__table__, people_rows(kit.id, 20)))
    await db.run_write(lambda conn: executemany(conn, Interaction.__table__, interaction_rows(kit.id, ids, "d")))

    def again(conn: Connection) -> None:
        more = insert_returning_ids(conn, Person.__table__, people_rows(kit.id, 20))
        executemany(conn, Interaction.__table__, interaction_rows(kit.id, more, "d"))  # same external ids

    with pytest.raises(IntegrityError):
        await db.run_write(again)
    counts = await db.run_read(lambda conn: (conn.scalar(select(func.count()).select_from(Person)),
                                             conn.scalar(select(func.count()).select_from(Interaction))))
    assert counts == (20, 20)


_PEOPLE = Person.__table__
_NAME = bindparam("name", type_=String())
BUMP = update(_PEOPLE).where(_PEOPLE.c.id == bindparam("pid")).values(
    mention_count=_PEOPLE.c.mention_count + bindparam("add", type_=Integer()),
    last_seen_at=bindparam("at", type_=UTCDateTime()),
    display_name=case((_NAME.is_(None), _PEOPLE.c.display_name), else_=_NAME))


@pytest.mark.parametrize("n", [3, 50])  # statement per row, and set-based (PostgreSQL)
async def test_updated_rows_each_get_their_own_values(db: Database, factory: Factory, n: int) -> None:
    kit = await factory.brand()
    ids = await db.run_write(lambda conn: insert_returning_ids(conn, _PEOPLE, people_rows(kit.id, n + 1)))
    untouched = ids.pop()
    rows = [{"pid": pid, "add": i, "at": AT + dt.timedelta(seconds=i), "name": None if i % 3 else f"new \u263a{i}"}
            for i, pid in reversed(list(enumerate(ids)))]
    await db.run_write(lambda conn: update_rows(conn, BUMP, rows, key="pid"))

    people = await db.run_read(lambda conn: conn.execute(
        select(Person.id, Person.mention_count, Person.last_seen_at, Person.display_name).order_by(Person.id)).all())
    assert [tuple(p) for p in people] == [
        (pid, 1 + i, AT + dt.timedelta(seconds=i), f"Person {i} \u00e9\u263a" if i % 3 else f"new \u263a{i}")
        for i, pid in enumerate(ids)] + [(untouched, 1, AT, f"Person {n} \u00e9\u263a")]


async def test_writers_updating_the_same_rows_in_opposite_orders_wait_in_turn(db: Database, factory: Factory) -> None:
    """Unordered, two set-based updates meeting in the middle of 2,000 rows deadlock (PostgreSQL cancels one);
    locked in key order first, the second waits for the first and both land."""
    kit = await factory.brand()
    ids = await db.run_write(lambda conn: insert_returning_ids(conn, _PEOPLE, people_rows(kit.id, 2000)))
    assert len(ids) >= COPY_MIN_ROWS
    rows = [{"pid": pid, "add": 1, "at": AT, "name": None} for pid in ids]
    for _ in range(5):
        await asyncio.gather(db.run_write(lambda conn: update_rows(conn, BUMP, rows, key="pid")),
                             db.run_write(lambda conn: update_rows(conn, BUMP, rows[::-1], key="pid")))
    counts = await db.run_read(lambda conn: set(conn.execute(select(Person.mention_count)).scalars()))
    assert counts == {11}
