"""What every ``assistant`` sub-command shares, wherever it is defined: settings read once with a one-line
error, a database for the length of one command, and the SQLite schema brought up to date.

The root command (``assistant.cli``) imports the packages' own commands (``people/commands.py``, ...); those
import only this module, never the root, so the command line has no import circle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from assistant.db import Database
from assistant.db.engine import postgres_write_problem, sqlite_write_problem
from assistant.db.migrate import upgrade
from assistant.errors import AssistantError
from assistant.settings import Settings, SettingsError, get_settings

T = TypeVar("T")


def settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def run_with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database; service errors (and a setting the work needs but lacks) become
    a one-line message, exit 1."""
    async def main() -> T:
        current = settings()
        db = Database.from_settings(current)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except AssistantError as exc:
        raise click.ClickException(exc.detail) from None
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def run_and_say(work: Callable[[Database], Awaitable[object]], done: str) -> None:
    """Run ``work`` as ``run_with_db`` does and, once it succeeded, print ``done``: a command that changes one
    thing and says so."""
    run_with_db(work)
    click.echo(done)


def migrate(current: Settings) -> None:
    """Run the migrations to head; one that needs a setting it lacks (the key webhook secrets are encrypted with)
    says which in one line."""
    try:
        upgrade(current.database_url, current)
    except SettingsError as exc:
        raise click.ClickException(f"the database was not migrated: {exc}") from None


def ensure_schema(current: Settings) -> None:
    """The embedded SQLite default brings itself up to date; PostgreSQL is migrated by the operator. A database
    the process may not write (a read-only SQLite file or folder; a read-only PostgreSQL role, database or
    standby) is refused here in one line, not at the first write with a traceback."""
    if current.is_sqlite:
        problem = sqlite_write_problem(current.database_url)
        if problem:
            raise click.ClickException(problem)
        migrate(current)
        return
    problem = postgres_write_problem(current.database_url)
    if problem:
        raise click.ClickException(problem)


__all__ = ["ensure_schema", "migrate", "run_and_say", "run_with_db", "settings"]
