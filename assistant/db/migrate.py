"""Bring a database's schema to the newest migration, and tell whether it is there."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from assistant.settings import Settings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
"""``assistant/migrations``: the top-level ``alembic/`` folder in a checkout (a link), its copy in a wheel, so an
installed service migrates its database from any working directory."""


def alembic_config(database_url: str, settings: Settings | None = None) -> Config:
    """``settings``: what a data migration needs besides the database (the key webhook secrets are encrypted
    with); without them a migration that needs them reads the environment's."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    config.attributes["settings"] = settings
    return config


def upgrade(database_url: str, settings: Settings | None = None) -> None:
    """Run migrations to head. Blocking: call it before the event loop."""
    command.upgrade(alembic_config(database_url, settings), "head")


def upgrade_in(conn: Connection) -> None:
    """Run migrations to head on ``conn``, in its transaction: a rule for ``db.run_write``. The eval makes its
    scratch database so (at ``synchronous=off``, in a tenth of the time ``upgrade`` takes on a fresh file)."""
    config = alembic_config(conn.engine.url.render_as_string(hide_password=False))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")



def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The migration the schema is at; None before the first. Run it with ``db.run_read``."""
    return MigrationContext.configure(conn).get_current_revision()
