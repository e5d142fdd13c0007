"""The fast paths of ``bulk.executemany`` (SQLite: straight to ``sqlite3``; PostgreSQL: one ``INSERT ... SELECT FROM
unnest(...)``) store exactly what SQLAlchemy's own executemany stores."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, text

from assistant.auth import service as auth
from assistant.db import Database
from assistant.db.people import Interaction, Person
from assistant.db.bulk import executemany


def _rows(prefix: str, person_id: int) -> list[dict[str, object]]:
    utc = dt.timezone.utc
    times = [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=utc), dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=utc),
             dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
             dt.datetime(999, 1, 1, tzinfo=utc), dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))]
    return [{"brand_id": 1, "person_id": person_id, "direction": "inbound", "platform": "x",
             "external_id": f"{prefix}{n}", "text": "héllo ‮ \u200b", "occurred_at": at, "received_at": times[0],
             "in_reply_to": None if n % 2 else "p", "conversation_key": None, "url": None, "lang": "en",
             "followers": n or None, "turn_id": None, "raw": None if n == 3 else {"n": n, "t": "é", "l": [1, None]}}
            for n, at in enumerate(times)]


async def test_fast_executemany_stores_what_sqlalchemy_stores(db: Database) -> None:
    brand = await db.run_write(auth.create_brand, "fast", "Fast")
    person_id = await db.run_write(lambda conn: conn.execute(insert(Person).values(
        brand_id=brand.id, display_name="p", first_seen_at=dt.datetime.now(dt.timezone.utc),
        last_seen_at=dt.datetime.now(dt.timezone.utc))).inserted_primary_key[0])

    def write(conn, fast: bool) -> None:  # type: ignore[no-untyped-def]
        rows = _rows("f" if fast else "s", person_id)
        for row in rows:
            row["brand_id"] = brand.id
        if fast:
            executemany(conn, Interaction.__table__, rows)
        else:
            conn.execute(Interaction.__table__.insert(), rows)

    await db.run_write(write, True)
    await db.run_write(write, False)

    columns = [c for c in Interaction.__table__.columns if c.name not in ("id", "external_id")]

    def stored(conn, prefix: str) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
        found = [tuple(row) for row in conn.execute(select(*columns).where(
            Interaction.external_id.startswith(prefix)).order_by(Interaction.external_id))]
        if conn.dialect.name == "sqlite":  # as stored, before the types' processing: time text, JSON as text
            found += [tuple(row) for row in conn.execute(text(
                "SELECT occurred_at, received_at, raw, typeof(raw) FROM interactions WHERE external_id LIKE :p "
                "ORDER BY external_id"), {"p": prefix + "%"})]
        return found

    fast, slow = await db.run_read(stored, "f"), await db.run_read(stored, "s")
    assert len(fast) in (5, 10) and fast == slow
