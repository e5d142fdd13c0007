"""The databases a benchmark runs on: SQLite always (a file in the bench's temporary folder), and PostgreSQL
when ``BENCH_DATABASE_URL`` names one (``postgresql://postgres@127.0.0.1:5432/bench_NAME``). The PostgreSQL
database is dropped and created afresh for each benchmark: never point it at a database holding data."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "")
PG_ONLY = os.environ.get("BENCH_PG_ONLY", "") == "1"
"""Skip SQLite (its figures taken in another run)."""


@dataclass(frozen=True)
class Engine:
    name: str  # "SQLite" or "PostgreSQL"
    url: str   # what ASSISTANT_DATABASE_URL takes

    @property
    def is_sqlite(self) -> bool:
        return self.name == "SQLite"

    @property
    def plain_url(self) -> str:
        """For asyncpg or sqlite3 alone."""
        return self.url.replace("postgresql+asyncpg://", "postgresql://")


def engines(workdir: Path, stem: str) -> list[Engine]:
    """A fresh, migrated-later SQLite file, and a freshly created PostgreSQL database when configured."""
    found = [] if PG_ONLY and BENCH_DATABASE_URL else [Engine("SQLite", f"sqlite+aiosqlite:///{workdir / (stem + '.db')}")]
    if BENCH_DATABASE_URL:
        found.append(Engine("PostgreSQL", fresh_postgres(BENCH_DATABASE_URL)))
    return found


def fresh_postgres(url: str, template: str | None = None) -> str:
    """Drop and create the database named by ``url`` (a copy of ``template`` when given, its files copied
    whole rather than through the write-ahead log); refuses the test databases."""
    import asyncpg

    base, _, name = url.rpartition("/")
    if not name or name.startswith("test") or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"BENCH_DATABASE_URL must name a database of its own (bench_...), not {name!r}")

    async def recreate() -> None:
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"'
                               + (f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""))
        finally:
            await conn.close()

    asyncio.run(recreate())
    return url.replace("postgresql://", "postgresql+asyncpg://")


def analyze(engine: Engine) -> None:
    """PostgreSQL: gather planner statistics now, as autovacuum would within its first minute; a fresh table's
    planner guesses (one row per brand) make a list lookup filter every row instead of using the index."""
    if engine.is_sqlite:
        return
    import asyncpg

    async def work() -> None:
        conn = await asyncpg.connect(engine.plain_url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(work())


def backend_pids(engine: Engine) -> list[int]:
    """PostgreSQL running on this machine: the server processes now serving ``engine``'s database (the service's
    pooled connections), whose CPU time is the database's share of a request; empty on SQLite, and when the
    server runs elsewhere (its process ids are not this machine's)."""
    if engine.is_sqlite:
        return []
    import asyncpg

    async def work() -> list[int]:
        conn = await asyncpg.connect(engine.plain_url)
        try:
            return [row["pid"] for row in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        finally:
            await conn.close()

    def is_postgres(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
        except OSError:
            return False

    return [pid for pid in asyncio.run(work()) if is_postgres(pid)]
