"""`assistant import FILE --brand SLUG` (history from NDJSON or the customer-support tweet CSV layout), and
`assistant people export|erase ID` (privacy requests)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import msgspec

from assistant.cli_support import ensure_schema, run_with_db, settings
from assistant.auth.principal import SYSTEM
from assistant.db import Database
from assistant.people import privacy
from assistant.people.schemas import Erasure
from assistant.people.importer import RateMeter, Report, import_file

SHOWN_INVALID = 20


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--brand", "slug", required=True, help="The brand whose history this is.")
@click.option("--format", "fmt", type=click.Choice(["auto", "ndjson", "csv"]), default="auto", show_default=True,
              help="auto: by extension (.ndjson/.jsonl/.csv), else by the first line.")
@click.option("--chunk-rows", type=click.IntRange(1, 100_000), default=5000, show_default=True,
              help="Rows per transaction.")
def import_history(file: Path, slug: str, fmt: str, chunk_rows: int) -> None:
    """Import earlier messages both ways into the brand's history (no turns, no drafts).

    Safe to run again: messages already stored count as duplicates. Progress goes to stderr.
    """
    from assistant.auth import service as auth

    ensure_schema(settings())
    meter = RateMeter()
    last = [0.0]

    def progress(report: Report) -> None:
        now = time.perf_counter()
        if now - last[0] >= 0.5:
            last[0] = now
            click.echo(meter.line(report), err=True)

    async def work(database: Database) -> Report:
        brand = await database.run_read(auth.brand_by_slug, slug)
        return await import_file(database, brand.id, file, fmt=fmt, chunk_rows=chunk_rows, progress=progress)

    report = run_with_db(work)
    click.echo(meter.line(report), err=True)
    for problem in sorted(report.invalid, key=lambda i: i.line)[:SHOWN_INVALID]:
        click.echo(f"{file}:{problem.line}: " + "; ".join(f"{e['field']}: {e['message']}" for e in problem.errors),
                   err=True)
    if report.invalid_count > SHOWN_INVALID:
        click.echo(f"... and {report.invalid_count - SHOWN_INVALID:,} more invalid rows", err=True)
    click.echo(f"imported {report.imported}, duplicates {report.duplicates}, invalid {report.invalid_count}")


@click.group()
def people() -> None:
    """Privacy requests: what the brand holds about a person, and erasing it."""


@people.command("export")
@click.argument("person_id", type=click.IntRange(1, 2**63 - 1))
def export(person_id: int) -> None:
    """Print everything held about the person as JSON."""
    ensure_schema(settings())

    async def work(db: Database) -> bytes:
        return msgspec.json.encode(await privacy.export_person(db, SYSTEM, person_id))

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
        return await privacy.erase_person(db, SYSTEM, person_id)

    done = run_with_db(work)
    rows = ", ".join(f"{table} {count}" for table, count in sorted(done.rows.items()))
    click.echo(f"person {person_id} erased at {done.erased_at.isoformat()} ({rows or 'nothing stored'})")
