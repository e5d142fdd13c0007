"""Issue 13, finding 1: a full disk answers 503 with Retry-After, and nothing acknowledged is lost.

SQLite: every connection of the app gets a ``max_page_count`` at the file's current size (SQLITE_FULL as soon
as a write needs a page more). PostgreSQL: a trigger raises ``disk_full`` (SQLSTATE 53100), the error a full
disk gives, on every new interaction.
"""

from __future__ import annotations

from assistant.services import app_services

from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from assistant.db.people import Interaction
from tests.support.db import execute
from tests.support.factories import mention


def cap_sqlite_file(database: Any) -> None:
    """New connections of every engine of ``database`` may not grow the file (pools emptied first)."""
    def cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count={pages}")
        cursor.close()

    for engine in database.engines:
        event.listen(engine, "connect", cap)
        engine.pool.dispose()


async def fill_postgres_disk(db: Any) -> None:
    await execute(db, text(
        "CREATE OR REPLACE FUNCTION test_disk_full() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; "
        "END $$ LANGUAGE plpgsql"),
        text("CREATE TRIGGER test_disk_full BEFORE INSERT ON interactions "
             "FOR EACH ROW EXECUTE FUNCTION test_disk_full()"))


@pytest.fixture
async def drop_disk_full_trigger(db: Any) -> Any:
    yield
    if not db.is_sqlite:
        await execute(db, text("DROP TRIGGER IF EXISTS test_disk_full ON interactions"))


async def test_a_full_disk_is_503_with_retry_after_and_every_acknowledged_mention_is_kept(
        app, client, factory, db, drop_disk_full_trigger) -> None:
    is_postgres = not db.is_sqlite
    kit = await factory.brand()
    acknowledged: set[str] = set()
    first = mention(text="before the disk filled")
    assert (await client.post("/api/v1/mentions", json=first, headers=kit.ingest)).status_code == 202
    acknowledged.add(first["external_id"])
    if is_postgres:
        await fill_postgres_disk(db)
    else:
        cap_sqlite_file(app_services(app).db)
    refusals = []
    for round_ in range(40):  # SQLite first fills the pages it already has; a few batches fill them
        batch = [mention(text="x" * 2000 + str(round_)) for _ in range(50)]
        response = await client.post("/api/v1/mentions/batch", json={"mentions": batch}, headers=kit.ingest)
        if response.status_code == 200:
            acknowledged.update(m["external_id"] for m, r in zip(batch, response.json()["results"])
                                if r["status"] == "accepted")
            continue
        refusals.append(response)
        break
    for _ in range(50):  # single mentions too, until one no longer fits in the pages left
        single = mention(text="y" * 10_000)
        response = await client.post("/api/v1/mentions", json=single, headers=kit.ingest)
        if response.status_code == 202:
            acknowledged.add(single["external_id"])
            continue
        refusals.append(response)
        break
    assert len(refusals) == 2, "the database never filled"
    for refusal in refusals:
        assert refusal.status_code == 503, refusal.text
        assert refusal.headers["content-type"].startswith("application/problem+json")
        assert int(refusal.headers["retry-after"]) >= 1
        assert "nothing was stored" in refusal.json()["detail"]
    stored, count = await db.run_read(lambda conn: (set(conn.scalars(select(Interaction.external_id))),
                                                    conn.scalar(select(func.count()).select_from(Interaction))))
    assert acknowledged <= stored and count == len(acknowledged)
