"""Two ``Database`` objects on one SQLite file behave like two processes: each has its own write lock, so
they meet only at SQLite's file lock. BEGIN IMMEDIATE plus busy_timeout must make them wait, not fail."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from assistant.auth import service as auth
from assistant.db import Database
from assistant.db.people import Interaction, Person
from assistant.mentions import service
from tests.support.db import scalar
from tests.support.factories import mention


pytestmark = pytest.mark.sqlite  # SQLite's file locking


@pytest.fixture
def sqlite_url(database_url: str, clean_tables: None) -> str:
    return database_url


async def test_two_writers_on_one_file_lose_nothing(sqlite_url: str) -> None:
    one, two = Database(sqlite_url), Database(sqlite_url)
    try:
        brand = await one.run_write(auth.create_brand, "locks", "Locks")

        async def writer(db: Database, name: str) -> int:
            stored = 0
            for batch in range(15):
                mentions = [service.validate(mention(f"{name}-{batch}-{n}", handle=f"@{name}{n % 9}"))
                            for n in range(60)]
                outcomes = await asyncio.gather(
                    service.ingest(db, brand.id, mentions[:30]), service.ingest(db, brand.id, mentions[30:]))
                stored += sum(not o.duplicate for part in outcomes for o in part)
            return stored

        counts = await asyncio.gather(writer(one, "a"), writer(two, "b"), writer(one, "c"), writer(two, "d"))
        assert counts == [900, 900, 900, 900]
        assert await scalar(one, select(func.count()).select_from(Interaction)) == 3600
        assert await scalar(one, select(func.count()).select_from(Person)) == 36
        assert await scalar(one, select(func.sum(Person.mention_count))) == 3600
    finally:
        await one.dispose()
        await two.dispose()


async def test_writers_in_threads_with_their_own_loops(sqlite_url: str) -> None:
    """Closer still to two processes: separate event loops in separate threads."""
    setup = Database(sqlite_url)
    brand = await setup.run_write(auth.create_brand, "threads", "Threads")
    await setup.dispose()

    def run(name: str) -> int:
        async def main() -> int:
            db = Database(sqlite_url)
            try:
                stored = 0
                for batch in range(20):
                    mentions = [service.validate(mention(f"{name}-{batch}-{n}", handle=f"@{name}"))
                                for n in range(50)]
                    stored += sum(not o.duplicate for o in await service.ingest(db, brand.id, mentions))
                return stored
            finally:
                await db.dispose()

        return asyncio.run(main())

    results = await asyncio.gather(*(asyncio.to_thread(run, name) for name in ("t1", "t2", "t3")))
    assert results == [1000, 1000, 1000]
    check = Database(sqlite_url)
    try:
        assert await scalar(check, select(func.count()).select_from(Interaction)) == 3000
    finally:
        await check.dispose()
