"""Two ``Database`` objects on one SQLite file behave like two processes: each has its own write lock, so
they meet only at SQLite's file lock. BEGIN IMMEDIATE plus busy_timeout must make them wait, not fail."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, make_url, select

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


def _database_file(url: str) -> Path:
    return Path(make_url(url).database or "")


async def test_a_write_waits_while_another_process_holds_the_writers_turn(sqlite_url: str) -> None:
    """The turn (db/writer_queue.py) is an flock on ``<file>-writers``: a descriptor of our own stands in for the
    other process. While it holds the turn nothing is written; the moment it lets go, the write goes through."""
    db = Database(sqlite_url)
    try:
        brand = await db.run_write(auth.create_brand, "turns", "Turns")
        other = os.open(_database_file(sqlite_url).with_name(_database_file(sqlite_url).name + "-writers"), os.O_RDWR)
        fcntl.flock(other, fcntl.LOCK_EX)
        try:
            write = asyncio.create_task(service.ingest(db, brand.id, [service.validate(mention("waiting-1"))]))
            await asyncio.sleep(0.3)
            assert not write.done()
            assert await scalar(db, select(func.count()).select_from(Interaction)) == 0
        finally:
            fcntl.flock(other, fcntl.LOCK_UN)
            os.close(other)
        outcomes = await asyncio.wait_for(write, 10)
        assert [o.duplicate for o in outcomes] == [False]
        assert await scalar(db, select(func.count()).select_from(Interaction)) == 1
    finally:
        await db.dispose()


def _take_turn_elsewhere(url: str) -> int:
    """A descriptor of our own on ``<file>-writers`` holding the writers' turn, standing in for another process."""
    other = os.open(_database_file(url).with_name(_database_file(url).name + "-writers"), os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    return other


async def test_a_write_handed_the_turn_by_another_process_runs_in_the_loop(sqlite_url: str) -> None:
    """It waits for the turn in a thread but writes in the loop: written in the thread, each statement would wait
    for the busy loop's GIL while the turn is held."""
    db = Database(sqlite_url)
    try:
        await db.run_write(auth.create_brand, "handover", "Handover")
        other = _take_turn_elsewhere(sqlite_url)
        asyncio.get_running_loop().call_later(0.2, lambda: (fcntl.flock(other, fcntl.LOCK_UN), os.close(other)))
        ran_in = await asyncio.wait_for(db.run_write(lambda conn: threading.get_ident()), 10)
        assert ran_in == threading.get_ident()
    finally:
        await db.dispose()


async def test_a_write_cancelled_while_waiting_for_the_turn_does_not_keep_it(sqlite_url: str) -> None:
    """The thread waiting for the turn cannot be stopped; when it gets the turn after its write was cancelled, it
    gives the turn back at once, so the other processes are not locked out."""
    db = Database(sqlite_url)
    try:
        brand = await db.run_write(auth.create_brand, "cancelled", "Cancelled")
        other = _take_turn_elsewhere(sqlite_url)
        write = asyncio.create_task(service.ingest(db, brand.id, [service.validate(mention("cancelled-1"))]))
        await asyncio.sleep(0.2)
        write.cancel()
        await asyncio.gather(write, return_exceptions=True)
        fcntl.flock(other, fcntl.LOCK_UN)
        for _ in range(200):  # the waiting thread takes the turn now, and must give it back
            await asyncio.sleep(0.01)
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                continue
        else:
            pytest.fail("the cancelled write kept the writers' turn")
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
        outcomes = await asyncio.wait_for(service.ingest(db, brand.id, [service.validate(mention("after-1"))]), 10)
        assert [o.duplicate for o in outcomes] == [False]
    finally:
        await db.dispose()


async def test_the_writers_turn_is_a_private_file_beside_the_database(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        await db.run_write(auth.create_brand, "private", "Private")
        turn_file = _database_file(sqlite_url).with_name(_database_file(sqlite_url).name + "-writers")
        assert stat.S_IMODE(turn_file.stat().st_mode) == 0o600
    finally:
        await db.dispose()


async def test_writes_go_on_when_the_writers_turn_cannot_be_used(sqlite_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A folder where the turn's file should be (or any error opening it) leaves SQLite's own locking in charge."""
    setup = Database(sqlite_url)
    brand = await setup.run_write(auth.create_brand, "noqueue", "No queue")
    await setup.dispose()
    turn_file = _database_file(sqlite_url).with_name(_database_file(sqlite_url).name + "-writers")
    turn_file.unlink()
    turn_file.mkdir()
    one, two = Database(sqlite_url), Database(sqlite_url)
    try:
        for n in range(3):
            await asyncio.gather(service.ingest(one, brand.id, [service.validate(mention(f"one-{n}"))]),
                                 service.ingest(two, brand.id, [service.validate(mention(f"two-{n}"))]))
        assert await scalar(one, select(func.count()).select_from(Interaction)) == 6
        assert "writers queue" in caplog.text and "cannot be used" in caplog.text
    finally:
        await one.dispose()
        await two.dispose()
        turn_file.rmdir()


async def test_a_write_that_finds_the_file_locked_outside_the_turns_waits_in_the_loop(sqlite_url: str) -> None:
    """A writer outside the turns (here a plain connection; in the service the checkpoint thread's restart) holds
    the file's write lock for 100 ms: the write waits without blocking the loop and then runs in the loop itself,
    not in a thread (where each statement waits for the GIL of the busy loop: 60-130 ms for an ingest)."""
    db = Database(sqlite_url)
    other = sqlite3.connect(_database_file(sqlite_url), isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.1, other.execute, "COMMIT")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        loop_thread = threading.get_ident()
        started = asyncio.get_running_loop().time()
        ran_in = await db.run_write(lambda conn: (conn.execute(select(func.count()).select_from(Interaction)),
                                                  threading.get_ident())[1])
        waited = asyncio.get_running_loop().time() - started
        ticker.cancel()
        assert ran_in == loop_thread
        assert waited >= 0.09 and ticks >= 10
    finally:
        other.close()
        await db.dispose()
