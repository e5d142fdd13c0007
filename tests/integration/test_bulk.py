"""The bulk paths of ``assistant/db/bulk.py`` on the database under test (PostgreSQL: COPY;
SQLite: ``executemany`` with ids given under the write lock): rows stored exactly, ids in order, a unique
violation is SQLAlchemy's ``IntegrityError`` (ingest retries on it) and leaves nothing of its transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from assistant.db import Database
from assistant.db.bulk import executemany, insert_returning_ids
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


@pytest.mark.parametrize("n", [3, 50])  # below and above the COPY threshold
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
