"""``assistant/db/reads.py`` on the database under test: the rows of a statement built once come back exactly as
SQLAlchemy's own execution gives them (times aware and equal, booleans, JSON, NULLs), bound times included."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, bindparam, select

from assistant.db import Database, reads
from assistant.db.base import UTCDateTime
from assistant.db.bulk import executemany, insert_returning_ids
from assistant.db.people import Interaction, Person
from tests.support.factories import Factory

AT = dt.datetime(2026, 11, 20, 12, 30, 15, 123456, tzinfo=dt.timezone.utc)
WHOLE_SECOND = dt.datetime(2026, 11, 20, 12, 30, 16, tzinfo=dt.timezone.utc)

_PEOPLE = (select(Person.id, Person.display_name, Person.do_not_reply, Person.followers, Person.first_seen_at,
                  Person.erased_at)
           .where(Person.brand_id == bindparam("brand_id"),
                  Person.first_seen_at >= bindparam("since", type_=UTCDateTime()))
           .order_by(Person.id))
_MESSAGES = (select(Interaction.id, Interaction.occurred_at, Interaction.text, Interaction.raw, Interaction.turn_id)
             .where(Interaction.person_id == bindparam("person_id")).order_by(Interaction.occurred_at.desc())
             .limit(bindparam("limit")))


async def test_rows_are_what_sqlalchemy_gives(db: Database, factory: Factory) -> None:
    kit = await factory.brand()

    def check(conn: Connection) -> None:
        people = [{"brand_id": kit.id, "display_name": f"Person {i} \u00e9\u263a", "do_not_reply": bool(i % 2),
                   "followers": i or None, "first_seen_at": at, "last_seen_at": at, "mention_count": 1,
                   "reply_count": 0, "created_at": at} for i, at in enumerate((AT, WHOLE_SECOND, AT))]
        ids = insert_returning_ids(conn, Person.__table__, people)
        executemany(conn, Interaction.__table__, [
            {"brand_id": kit.id, "person_id": ids[0], "direction": "inbound", "platform": "x", "external_id": f"r{i}",
             "text": f"quote \" and newline\n{i}", "occurred_at": at, "received_at": at,
             "raw": {"n": i} if i else None} for i, at in enumerate((AT, WHOLE_SECOND))])
        for statement, params in ((_PEOPLE, {"brand_id": kit.id, "since": AT}),
                                  (_PEOPLE, {"brand_id": kit.id, "since": WHOLE_SECOND}),
                                  (_MESSAGES, {"person_id": ids[0], "limit": 5})):
            expected = [tuple(row) for row in conn.execute(statement, params)]
            assert expected and reads.rows(conn, statement, params) == expected
        found = reads.rows(conn, _PEOPLE, {"brand_id": kit.id, "since": AT})
        assert [row[4] for row in found] == [AT, WHOLE_SECOND, AT]
        assert all(row[4].tzinfo is dt.timezone.utc and type(row[2]) is bool for row in found)
        assert reads.rows(conn, _MESSAGES, {"person_id": ids[1], "limit": 5}) == []

    await db.run_write(check)
