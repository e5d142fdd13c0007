"""A consistent copy of a live SQLite database, taken while the service keeps serving.

SQLite's online backup API copies the file page by page and starts over if a writer changes a page it has
copied, so the copy is one committed state (every transaction committed before it finished, none half). It
copies in steps and sleeps between them, so writers are held up for at most one step. PostgreSQL has its own
tools: ``pg_dump`` (see the README).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from assistant.db.engine import normalize_url

PAGES_PER_STEP = 1024
"""Pages copied while holding the read lock; 4 MiB at the default page size."""


class BackupRefused(ValueError):
    """The backup cannot be taken as asked; the message says why and what to do instead."""


def sqlite_path(url: str) -> Path:
    """The file behind a SQLite URL; refuses PostgreSQL and in-memory databases."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        raise BackupRefused("this is a PostgreSQL database: back it up with pg_dump, e.g. "
                            "pg_dump --format=custom --file=FILE DBNAME (restore with pg_restore)")
    rest = url.split(":", 1)[1]
    if not rest.startswith("///") or rest in ("///", "///:memory:") or "mode=memory" in rest:
        raise BackupRefused("an in-memory database has no file to back up")
    return Path(rest[3:].split("?", 1)[0])


def backup_sqlite(url: str, target: Path) -> int:
    """Copy the database at ``url`` into the new file ``target``; answers the number of pages copied."""
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupRefused(f"no database file at {source_path}")
    if target.exists():
        raise BackupRefused(f"{target} exists; a backup never overwrites a file")
    partial = target.with_name(target.name + ".partial")
    source = sqlite3.connect(source_path)
    destination = sqlite3.connect(partial)
    try:
        source.backup(destination, pages=PAGES_PER_STEP, sleep=0.005)
        pages = destination.execute("PRAGMA page_count").fetchone()[0]
        check = destination.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupRefused(f"the copy failed its integrity check: {check}")
    finally:
        destination.close()
        source.close()
    partial.rename(target)
    return int(pages)
