"""`assistant people export ID` and `assistant people erase ID`: privacy requests from the command line."""

from __future__ import annotations

import json

import click
import msgspec

from assistant.auth.principal import SYSTEM
from assistant.cli import ensure_schema, run_with_db, settings
from assistant.db import Database
from assistant.privacy import service
from assistant.privacy.schemas import Erasure


@click.group()
def people() -> None:
    """Privacy requests: what the brand holds about a person, and erasing it."""


@people.command("export")
@click.argument("person_id", type=click.IntRange(1, 2**63 - 1))
def export(person_id: int) -> None:
    """Print everything held about the person as JSON."""
    ensure_schema(settings())

    async def work(db: Database) -> bytes:
        return msgspec.json.encode(await service.export_person(db, SYSTEM, person_id))

    click.echo(json.dumps(json.loads(run_with_db(work)), indent=2, ensure_ascii=False))


@people.command("erase")
@click.argument("person_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(person_id: int, yes: bool) -> None:
    """Erase the person everywhere: messages, drafts, replies, notes and handles. Cannot be undone."""
    ensure_schema(settings())
    if not yes:
        click.confirm(f"Erase person {person_id} everywhere? This cannot be undone", abort=True)

    async def work(db: Database) -> Erasure:
        return await service.erase_person(db, SYSTEM, person_id)

    done = run_with_db(work)
    rows = ", ".join(f"{table} {count}" for table, count in sorted(done.rows.items()))
    click.echo(f"person {person_id} erased at {done.erased_at.isoformat()} ({rows or 'nothing stored'})")
