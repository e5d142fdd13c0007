"""Bench stores: one brand (``bench``) holding N interactions over N/5 people, for the benchmarks that need a
store of a given size (history at 1M, the store-size dimension up to 10M).

Each person has the handle ``p0``, ``p1``, ... on platform ``x``; the interactions (two in three inbound) fall on
people at random and are spread evenly over 2019-2025, before any mention a benchmark sends. Loading goes around
the service, as fast as each database takes rows: SQLite through the plain ``sqlite3`` driver with the journal
off, PostgreSQL by ``COPY`` through asyncpg; both drop the migrations' secondary indexes on the three tables
first and build them again afterwards from their own definitions, so the schema ends as the migrations made it.
PostgreSQL then runs ``VACUUM (ANALYZE)`` (hint bits, visibility map, statistics), the state autovacuum reaches in
production, then a ``CHECKPOINT`` and the machine's ``sync``: left to the kernel's writeback, the load's writes
were still going to disk during the first history runs, and a backend waited on the disk for 300-350 ms.

Building 10M takes minutes, so built stores are kept, named by size, migration head and ``SHAPE``: SQLite files
under ``~/.cache/reply-assistant/bench-stores/``, PostgreSQL databases ``bench_store_<size>_<head>_s<SHAPE>``
on the server of ``BENCH_DATABASE_URL``. A run works on a copy (the file copied; ``CREATE DATABASE ...
TEMPLATE``), so every run starts from the same store. A kept store of another head or shape is removed when
its replacement is built.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import random
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_ingest import setup_brand
from bench.databases import BENCH_DATABASE_URL, Engine, fresh_postgres

SHAPE = 1
"""Bump when the rows a store holds change: kept stores of another shape are built again."""

CACHE = Path.home() / ".cache" / "reply-assistant" / "bench-stores"
TABLES = ("people", "handles", "interactions")
START = dt.datetime(2019, 1, 1)
SPAN_SECONDS = 7 * 365 * 86_400
CHUNK = 100_000


@dataclass(frozen=True)
class Store:
    interactions: int
    first_person: int
    """People ids run from ``first_person`` to ``first_person + people - 1``; person ``first_person + k`` has
    the handle ``pk``."""
    people: int

    @property
    def last_person(self) -> int:
        return self.first_person + self.people - 1


def people_for(interactions: int) -> int:
    return interactions // 5


def size_label(interactions: int) -> str:
    """``0``, ``1m``, ``10m``, ``250k`` or the number itself: the name of a kept store."""
    for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
        if interactions and interactions % unit == 0:
            return f"{interactions // unit}{suffix}"
    return str(interactions)


def _rows(brand_id: int, first: int, interactions: int, stamp: Callable[[dt.datetime], Any]
          ) -> tuple[Iterator[tuple[Any, ...]], Iterator[tuple[Any, ...]], Iterator[tuple[Any, ...]]]:
    """The people, handles and interactions of a store, as tuples in the column order of ``_COLUMNS``."""
    people = people_for(interactions)
    at = stamp(START)
    rng = random.Random(7)
    spacing = SPAN_SECONDS / max(interactions, 1)
    return (
        ((first + n, brand_id, f"Person {n}", False, at, at, 5, 0, at) for n in range(people)),
        ((brand_id, first + n, "x", f"p{n}", at) for n in range(people)),
        ((brand_id, first + rng.randrange(people), "inbound" if n % 3 else "outbound", "x", f"h{n:09d}",
          f"message {n} about an order", stamp(START + dt.timedelta(seconds=n * spacing)), at)
         for n in range(interactions)))


_COLUMNS = {
    "people": ("id", "brand_id", "display_name", "do_not_reply", "first_seen_at", "last_seen_at", "mention_count",
               "reply_count", "created_at"),
    "handles": ("brand_id", "person_id", "platform", "handle", "created_at"),
    "interactions": ("brand_id", "person_id", "direction", "platform", "external_id", "text", "occurred_at",
                     "received_at"),
}


def _sqlite_time(value: dt.datetime) -> str:
    """What ``UTCDateTime`` stores on SQLite (``assistant/db/bulk.py``)."""
    return value.isoformat(" ", "microseconds")


def load_sqlite(path: Path, interactions: int) -> Store:
    """Fill the migrated SQLite file at ``path`` (brand ``bench`` made) with a store of ``interactions``."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        brand_id = con.execute("SELECT id FROM brands WHERE slug = 'bench'").fetchone()[0]
        first = con.execute("SELECT coalesce(max(id), 0) + 1 FROM people").fetchone()[0]
        if not interactions:
            return Store(0, first, 0)
        con.execute("PRAGMA journal_mode=OFF")  # nothing to roll back to: a failed build is thrown away
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")  # 256 MB: the index builds sort in memory
        indexes = con.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(TABLES))})", TABLES).fetchall()
        con.execute("BEGIN")
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for table, rows in zip(TABLES, _rows(brand_id, first, interactions, _sqlite_time)):
            columns = _COLUMNS[table]
            con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            rows)
        for _, sql in indexes:
            con.execute(sql)
        con.execute("COMMIT")
        con.execute("PRAGMA journal_mode=WAL")
        return Store(interactions, first, people_for(interactions))
    finally:
        con.close()


def load_postgres(url: str, interactions: int) -> Store:
    """The same store into the migrated PostgreSQL database at ``url`` (plain ``postgresql://``)."""
    import asyncpg

    async def work() -> Store:
        conn = await asyncpg.connect(url)
        try:
            brand_id = await conn.fetchval("SELECT id FROM brands WHERE slug = 'bench'")
            first = int(await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM people"))
            if not interactions:
                return Store(0, first, 0)
            await conn.execute("SET maintenance_work_mem = '512MB'")
            indexes = await conn.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
                "AND i.tablename = any($1::text[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                "WHERE c.conname = i.indexname AND c.connamespace = (SELECT oid FROM pg_namespace "
                "WHERE nspname = i.schemaname))", list(TABLES))
            async with conn.transaction():
                for index in indexes:
                    await conn.execute(f'DROP INDEX "{index["indexname"]}"')
                for table, rows in zip(TABLES, _rows(brand_id, first, interactions, lambda at: at)):
                    while chunk := list(itertools.islice(rows, CHUNK)):
                        await conn.copy_records_to_table(table, columns=list(_COLUMNS[table]), records=chunk)
                for index in indexes:
                    await conn.execute(index["indexdef"])
                for table in TABLES:
                    await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"(SELECT max(id) FROM {table}))")
            await conn.execute("VACUUM (ANALYZE)")
            await conn.execute("CHECKPOINT")
            os.sync()
            return Store(interactions, first, people_for(interactions))
        finally:
            await conn.close()

    return asyncio.run(work())


def _head() -> str:
    from assistant.db.migrate import head_revision

    return re.sub(r"[^a-z0-9_]", "_", (head_revision("sqlite://") or "none").lower())[:24]


@dataclass(frozen=True)
class Prepared:
    engine: Engine
    store: Store
    built_seconds: float | None
    """How long building the kept store took in this run; None when it was kept from an earlier run."""
    bytes: int
    """The store's size on disk (the SQLite file; the PostgreSQL database)."""


def prepared(sqlite: bool, interactions: int, workdir: Path) -> Prepared:
    """A copy of the store of ``interactions`` for one run, built and kept first if there is none: SQLite in
    ``workdir``, PostgreSQL as the database of ``BENCH_DATABASE_URL`` (dropped and made again)."""
    return _prepared_sqlite(interactions, workdir) if sqlite else _prepared_postgres(interactions)


def _prepared_sqlite(interactions: int, workdir: Path) -> Prepared:
    path = workdir / f"store-{size_label(interactions)}.db"
    url = f"sqlite+aiosqlite:///{path}"
    built = None
    if not interactions:
        setup_brand(url)
    else:
        kept = CACHE / f"store-{size_label(interactions)}-{_head()}-s{SHAPE}.db"
        if not kept.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            for stale in CACHE.glob(f"store-{size_label(interactions)}-*"):
                stale.unlink()
            building = kept.with_suffix(".building")
            started = time.perf_counter()
            setup_brand(f"sqlite+aiosqlite:///{building}")
            load_sqlite(building, interactions)
            building.rename(kept)
            for left in CACHE.glob(building.name + "-*"):  # the service's files beside it (writers' queue)
                left.unlink()
            built = time.perf_counter() - started
        shutil.copyfile(kept, path)
        with path.open("rb+") as copied:  # written back now, not by the kernel during the measurement
            os.fsync(copied.fileno())
    store = _sqlite_store(path, interactions)
    return Prepared(Engine("SQLite", url), store, built, path.stat().st_size)


def _sqlite_store(path: Path, interactions: int) -> Store:
    con = sqlite3.connect(path)
    try:
        first, last = con.execute("SELECT min(id), max(id) FROM people").fetchone()
    finally:
        con.close()
    return Store(interactions, first or 1, (last - first + 1) if first else 0)


def _prepared_postgres(interactions: int) -> Prepared:
    import asyncpg

    server = BENCH_DATABASE_URL.rpartition("/")[0]
    built = None
    template = None
    if interactions:
        template = f"bench_store_{size_label(interactions)}_{_head()}_s{SHAPE}"
        if not asyncio.run(_postgres_has(server, template)):
            asyncio.run(_drop_postgres(server, f"bench_store_{size_label(interactions)}\\_%"))
            building = f"{template}_building"
            started = time.perf_counter()
            setup_brand(fresh_postgres(f"{server}/{building}"))
            load_postgres(f"{server}/{building}", interactions)
            asyncio.run(_rename_postgres(server, building, template))
            built = time.perf_counter() - started
    url = fresh_postgres(BENCH_DATABASE_URL, template=template)
    if not interactions:
        setup_brand(url)

    async def describe() -> tuple[Store, int]:
        conn = await asyncpg.connect(BENCH_DATABASE_URL)
        try:
            first, last = await conn.fetchrow("SELECT min(id), max(id) FROM people")
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            # the WAL of a build or copy would otherwise bring on a checkpoint during the measurement (seen: 30 s
            # of syncing at ~80 mentions/s)
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
        return Store(interactions, first or 1, (last - first + 1) if first else 0), int(size)

    store, size = asyncio.run(describe())
    return Prepared(Engine("PostgreSQL", url), store, built, size)


async def _postgres_has(server: str, name: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _drop_postgres(server: str, like: str) -> None:
    """Drop the kept stores matching ``like`` (stale ones, and a build that was interrupted)."""
    import asyncpg

    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        for name in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", like):
            await conn.execute(f'DROP DATABASE "{name["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()


async def _rename_postgres(server: str, old: str, new: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')
    finally:
        await conn.close()
