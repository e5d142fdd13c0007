"""The one chunked per-platform lookup (assistant/db/lookup.py) on the database under test: every key found
once whatever the chunk size, platforms kept apart, other brands' rows never found."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Connection, bindparam, select

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.bulk import executemany
from assistant.db.dialect import insert_ignoring_duplicates
from assistant.db.lookup import platform_keys, rows_by_platform_keys
from assistant.db.people import Handle, Person

FIND = (select(Handle.platform, Handle.handle, Handle.person_id)
        .where(Handle.brand_id == bindparam("brand_id"), platform_keys(Handle.platform, Handle.handle)))


def seed(conn: Connection, brand_id: int, handles: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """A person per handle; answers each handle's person."""
    now = utcnow()
    found = {}
    for platform, handle in handles:
        person_id = conn.execute(Person.__table__.insert().values(
            brand_id=brand_id, display_name=handle, first_seen_at=now, last_seen_at=now, created_at=now)
            .returning(Person.id)).scalar_one()
        conn.execute(Handle.__table__.insert().values(brand_id=brand_id, person_id=person_id, platform=platform,
                                                      handle=handle, created_at=now))
        found[(platform, handle)] = person_id
    return found


@pytest.mark.parametrize("chunk", [1, 3, 400])
async def test_every_key_is_found_once_across_platforms_and_chunks(db: Database, factory, chunk: int) -> None:
    mine, other = await factory.brand(), await factory.brand()
    stored = [("x", f"h{n}") for n in range(10)] + [("bluesky", f"h{n}") for n in range(0, 10, 2)]
    people = await db.run_write(seed, mine.id, stored)
    await db.run_write(seed, other.id, [("x", "h1"), ("x", "elsewhere")])
    asked = [("x", f"h{n}") for n in range(12)] + [("bluesky", f"h{n}") for n in range(10)] + [("x", "h3")] * 3 \
        + [("mastodon", "h1"), ("x", "elsewhere")]

    rows = await db.run_read(lambda conn: list(rows_by_platform_keys(conn, FIND, asked, chunk=chunk,
                                                                     brand_id=mine.id)))

    found = [((platform, handle), person_id) for platform, handle, person_id in rows]
    assert sorted(found) == sorted(people.items())  # once each, this brand's only, the right platform's only


async def test_no_keys_run_no_statement(db: Database, factory) -> None:
    brand = await factory.brand()
    assert await db.run_read(lambda conn: list(rows_by_platform_keys(conn, FIND, [], brand_id=brand.id))) == []


async def test_inserting_a_duplicate_handle_is_skipped_not_an_error(db: Database, factory) -> None:
    brand = await factory.brand()
    people = await db.run_write(seed, brand.id, [("x", "ana")])
    now = dt.datetime.now(dt.timezone.utc)

    def again(conn: Connection) -> list[int]:
        executemany(conn, insert_ignoring_duplicates(conn, Handle.__table__), [
            {"brand_id": brand.id, "person_id": people[("x", "ana")], "platform": "x", "handle": "ana",
             "created_at": now}])
        return list(conn.execute(select(Handle.person_id).where(Handle.brand_id == brand.id)).scalars())

    assert await db.run_write(again) == [people[("x", "ana")]]
