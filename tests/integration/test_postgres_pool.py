"""PostgreSQL: a pooled connection whose server side is gone (a restart, a terminated backend) never fails a
transaction. A write's connection is checked when it is taken from the pool (by the transaction's ``BEGIN``, sent
then) and replaced; a read takes its connection unchecked, in autocommit (no BEGIN or COMMIT), and runs once more
on a live one when its first statement finds the connection dead."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, event, func, literal_column, select, text
from sqlalchemy.exc import DBAPIError

from assistant.db import Database, reads
from tests.conftest import TEST_DATABASE_URL

BACKEND = text("SELECT pg_backend_pid()")
BACKEND_ROWS = select(func.pg_backend_pid())
DIVIDE = select(literal_column("1") / bindparam("zero"))


async def _terminate(pid: int) -> None:
    killer = await asyncpg.connect(TEST_DATABASE_URL.replace("+asyncpg", ""))
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await killer.close()
    await asyncio.sleep(0.2)


@pytest.mark.postgres
async def test_a_read_on_a_dead_pooled_connection_runs_again_on_a_live_one(db: Database) -> None:
    first = await db.run_read(lambda conn: conn.execute(BACKEND).scalar_one())
    assert await db.run_read(lambda conn: conn.execute(BACKEND).scalar_one()) == first  # the pool keeps it
    await _terminate(first)
    runs: list[int] = []

    def backend(conn: Any) -> int:
        runs.append(1)
        return conn.execute(BACKEND).scalar_one()

    again = await db.run_read(backend)
    assert again != first
    assert len(runs) == 2  # no ping found the dead connection: the read's own statement did, and it ran again


@pytest.mark.postgres
async def test_a_fast_read_on_a_dead_pooled_connection_runs_again_on_a_live_one(db: Database) -> None:
    """``reads.rows`` runs on the driver's cursor, past SQLAlchemy's execution: it must still tell the pool."""
    statement = select(func.pg_backend_pid())
    first = await db.run_read(reads.rows, statement, {})
    await _terminate(first[0][0])
    runs: list[int] = []

    def backend(conn: Any) -> list[tuple[Any, ...]]:
        runs.append(1)
        return reads.rows(conn, statement, {})

    again = await db.run_read(backend)
    assert again[0][0] != first[0][0] and len(runs) == 2


@pytest.mark.postgres
async def test_a_fast_read_that_fails_on_a_live_connection_raises_the_drivers_error_and_keeps_the_connection(
        db: Database) -> None:
    """The driver's own error, wrapped as SQLAlchemy wraps it (what ``Database`` translates: a serialization
    failure, a full disk), with its SQLSTATE; not run again, and the connection stays in the pool."""
    first = await db.run_read(reads.rows, BACKEND_ROWS, {})
    runs: list[int] = []

    def divide(conn: Any) -> list[tuple[Any, ...]]:
        runs.append(1)
        return reads.rows(conn, DIVIDE, {"zero": 0})

    with pytest.raises(DBAPIError) as raised:
        await db.run_read(divide)
    assert raised.value.orig.sqlstate == "22012" and not raised.value.connection_invalidated  # division by zero
    assert runs == [1]
    assert await db.run_read(reads.rows, BACKEND_ROWS, {}) == first


@pytest.mark.postgres
async def test_a_write_is_given_a_live_connection_by_the_ping(db: Database) -> None:
    first = await db.run_write(lambda conn: conn.execute(BACKEND).scalar_one())
    assert await db.run_write(lambda conn: conn.execute(BACKEND).scalar_one()) == first
    await _terminate(first)
    runs: list[int] = []

    def backend(conn: Any) -> int:
        runs.append(1)
        return conn.execute(BACKEND).scalar_one()

    assert await db.run_write(backend) != first
    assert runs == [1]  # a write never runs twice: the ping replaced the connection before it began


@pytest.mark.postgres
async def test_a_read_sends_its_statement_alone_and_a_write_its_transaction_whose_begin_is_the_ping() -> None:
    """The simple queries asyncpg sends besides the statements (which it sends prepared and does not log): a
    read sends none (no ping, BEGIN or COMMIT: one round trip, four before), a write its BEGIN (sent when the
    connection is taken: the ping) and COMMIT, no ``SELECT 1``."""
    db = Database(TEST_DATABASE_URL, pool_size=1)
    sent: list[str] = []
    event.listen(next(iter(db.engines)), "connect",
                 lambda dbapi, _record: dbapi.driver_connection.add_query_logger(lambda q: sent.append(q.query)))
    try:  # asyncpg hands each query to its loggers with call_soon: a turn of the loop before reading them
        await db.run_write(lambda conn: conn.execute(BACKEND).scalar_one())
        await asyncio.sleep(0)
        sent.clear()
        await db.run_write(lambda conn: conn.execute(BACKEND).scalar_one())
        await asyncio.sleep(0)
        assert sent == ["BEGIN;", "COMMIT;"]
        sent.clear()
        assert await db.run_read(lambda conn: conn.execute(BACKEND).scalar_one()) > 0
        await asyncio.sleep(0)
        assert sent == []
    finally:
        await db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["write", "read"])
async def test_a_transaction_cancelled_inside_its_statement_stores_nothing_and_gives_its_connection_back(
        db: Database, kind: str) -> None:
    """A transaction runs in one greenlet, without SQLAlchemy's ``AsyncConnection`` (whose exit ran as a shielded
    task): a caller cancelled while the database works (a client gone, a timeout) must still roll back and hand
    the connection back to the pool, or a few cancellations would leave the pool empty."""
    slug, stored = f"cancelled-{kind}", asyncio.Event()

    def store_then_wait(conn: Any) -> None:
        conn.execute(text("INSERT INTO brands (slug, name, created_at) VALUES (:slug, 'Gone', now())"),
                     {"slug": slug})
        stored.set()
        conn.execute(text("SELECT pg_sleep(5)"))

    run = db.run_write if kind == "write" else db.run_read
    task = asyncio.create_task(run(store_then_wait))
    await asyncio.wait_for(stored.wait(), 5)
    await asyncio.sleep(0.2)  # inside pg_sleep
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 3)
    pool = next(iter(db.engines)).pool
    assert pool.checkedout() == 0 and pool.checkedin() == 1, pool.status()  # handed back, not left to the collector
    found = await db.run_read(lambda conn: conn.execute(text("SELECT count(*) FROM brands WHERE slug = :slug"),
                                                        {"slug": slug}).scalar_one())
    assert found == (0 if kind == "write" else 1)  # a read runs in autocommit: its statement stood alone
    assert await db.run_write(lambda conn: conn.execute(BACKEND).scalar_one()) > 0
