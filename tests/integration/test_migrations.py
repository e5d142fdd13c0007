"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from assistant.db import Database
from assistant.db.migrate import current_revision, head_revision, upgrade, upgrade_in
from assistant.db.models import Base


async def test_the_migrated_schema_matches_the_models(db: Database) -> None:
    diff = await db.run_read(lambda conn: compare_metadata(
        MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata))
    assert diff == []


async def test_the_database_is_at_head(db: Database) -> None:
    assert await db.run_read(current_revision) == head_revision(db.url)


async def test_migrating_on_a_connection_builds_the_same_schema_as_upgrade(tmp_path: Path) -> None:
    """``upgrade_in`` (the eval's scratch database, in a ``run_write`` transaction) and ``upgrade`` (the service's
    own engine) leave the same tables, indexes and triggers, at head."""
    await asyncio.to_thread(upgrade, f"sqlite:///{tmp_path / 'upgrade.db'}")
    scratch = Database(f"sqlite:///{tmp_path / 'upgrade_in.db'}", synchronous="off")
    try:
        await scratch.run_write(upgrade_in)
        assert await scratch.run_read(current_revision) == head_revision(scratch.url)
    finally:
        await scratch.dispose()

    def schema(name: str) -> list[tuple[str, str, list[str]]]:
        """Each table's, index's and trigger's definition as a sorted list of its lines (a table batch mode rebuilt
        lists its constraints in an order that varies from one process to the next)."""
        with closing(sqlite3.connect(tmp_path / name)) as conn:
            return sorted((kind, entry, sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()))
                          for kind, entry, sql in conn.execute("SELECT type, name, sql FROM sqlite_master"))
    assert schema("upgrade_in.db") == schema("upgrade.db") != []
