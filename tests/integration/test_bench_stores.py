"""The benchmarks' stores (``bench/stores.py``), on the database under test: a store of N interactions holds
what it says in the schema the migrations make (its secondary indexes dropped for the load and built again),
and the service reads it as its own (a known handle finds its person, a stored external id is a duplicate);
a kept store is built once, a stale one is removed, and every run gets a copy of its own."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection, func, select, text

from assistant.db import Database
from assistant.db.people import Handle, Interaction, Person
from assistant.mentions import service as mentions
from bench import stores

SIZE = 1_000


@pytest.fixture
def kept(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """Kept stores in a folder of this test; on PostgreSQL, the run database on the server under test, and
    every database the test made dropped afterwards. Answers the server's URL (None on SQLite)."""
    monkeypatch.setattr(stores, "CACHE", tmp_path / "cache")
    if database_url.startswith("sqlite"):
        yield None
        return
    server = database_url.replace("+asyncpg", "").rpartition("/")[0]
    monkeypatch.setattr(stores, "BENCH_DATABASE_URL", f"{server}/bench_test_stores")
    yield server

    async def drop() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            for row in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'bench_store_1k%' "
                                        "OR datname = 'bench_test_stores'"):
                await conn.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def read(url: str, fn: Any) -> Any:
    async def go() -> Any:
        db = Database(url)
        try:
            return await db.run_read(fn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def indexes(conn: Connection) -> list[tuple[str, ...]]:
    """Every index and table definition of the three tables a store fills, as the database states them."""
    if conn.dialect.name == "sqlite":
        return sorted(tuple(r) for r in conn.exec_driver_sql(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE tbl_name IN "
            "('people', 'handles', 'interactions')"))
    return sorted(tuple(r) for r in conn.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename IN ('people', 'handles', 'interactions')"))


def counts(conn: Connection) -> tuple[int, int, int, int]:
    return (conn.scalar(select(func.count()).select_from(Person)), conn.scalar(select(func.count()).select_from(Handle)),
            conn.scalar(select(func.count()).select_from(Interaction)),
            conn.scalar(select(func.count()).select_from(Interaction).where(Interaction.direction == "inbound")))


def test_a_store_holds_its_rows_in_the_schema_the_migrations_make(database_url: str, kept: str | None,
                                                                   tmp_path: Path) -> None:
    run = stores.prepared(kept is None, SIZE, tmp_path)
    store = run.store
    assert (store.interactions, store.people) == (SIZE, SIZE // 5)
    assert read(run.engine.url, counts) == (200, 200, SIZE, 666)
    assert read(run.engine.url, indexes) == read(database_url, indexes)

    def first_message(conn: Connection) -> Any:
        return conn.execute(select(Interaction.occurred_at, Interaction.person_id, Interaction.text)
                            .where(Interaction.external_id == "h000000000")).one()

    at, person_id, words = read(run.engine.url, first_message)
    assert at == dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc)
    assert store.first_person <= person_id <= store.last_person and words == "message 0 about an order"

    def mention(external_id: str) -> mentions.Mention:
        return mentions.validate({"platform": "x", "external_id": external_id, "text": "@acme where is it?",
                                  "created_at": "2026-11-20T12:00:00Z", "author": {"handle": "@p7"}})

    async def ingest() -> list[mentions.Outcome]:
        db = Database(run.engine.url)
        try:
            brand_id = await db.run_read(lambda conn: conn.scalar(text("SELECT id FROM brands WHERE slug = 'bench'")))
            return await mentions.ingest(db, brand_id, [mention("new-1"), mention("h000000005")])
        finally:
            await db.dispose()

    new, stored = asyncio.run(ingest())
    assert (new.person_id, new.duplicate) == (store.first_person + 7, False)
    assert stored.duplicate and stored.turn_id is None


def test_a_kept_store_is_built_once_and_each_run_gets_its_own_copy(kept: str | None, tmp_path: Path) -> None:
    sqlite = kept is None
    stale = stores.CACHE / "store-1k-0001_old-s0.db"
    if sqlite:
        stores.CACHE.mkdir(parents=True)
        stale.write_bytes(b"an older store")
    else:
        asyncio.run(_create(kept, "bench_store_1k_0001_old_s0"))

    first = stores.prepared(sqlite, SIZE, tmp_path)
    assert first.built_seconds is not None and first.bytes > 0

    def forget(conn: Connection) -> None:
        conn.execute(Interaction.__table__.delete())

    asyncio.run(_write(first.engine.url, forget))
    assert read(first.engine.url, counts)[2] == 0

    again = stores.prepared(sqlite, SIZE, tmp_path)
    assert again.built_seconds is None
    assert read(again.engine.url, counts) == (200, 200, SIZE, 666)
    if sqlite:
        assert not stale.exists() and len(list(stores.CACHE.iterdir())) == 1
    else:
        assert not asyncio.run(stores._postgres_has(kept, "bench_store_1k_0001_old_s0"))


async def _create(server: str, name: str) -> None:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _write(url: str, fn: Any) -> None:
    db = Database(url)
    try:
        await db.run_write(fn)
    finally:
        await db.dispose()
