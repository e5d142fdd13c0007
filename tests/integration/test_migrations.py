"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from assistant.db import Database
from assistant.db.migrate import current_revision, head_revision
from assistant.db.models import Base


async def test_the_migrated_schema_matches_the_models(db: Database) -> None:
    diff = await db.run_read(lambda conn: compare_metadata(
        MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata))
    assert diff == []


async def test_the_database_is_at_head(db: Database) -> None:
    assert await db.run_read(current_revision) == head_revision(db.url)
