"""Durability (issue 14): SQLite writes wait for the disk (FULL) unless told otherwise, and ``assistant db backup``
takes a consistent copy of a live database from which every acknowledged mention comes back.

These tests make their own SQLite file, so they run the same in the PostgreSQL run of the suite; there,
the command refuses and names pg_dump."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from assistant.app import create_app
from assistant.db import Database
from assistant.db.migrate import upgrade
from assistant.settings import Settings, SettingsError
from tests.integration.test_cli import assistant
from tests.support.factories import Factory, mention


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def file_settings(path: Path) -> Settings:
    return Settings(database_url=sqlite_url(path), secret_key="test-secret-key-not-for-production",
                    rate_limit_per_minute=100_000)


@pytest.mark.parametrize(("setting", "flushed", "pragma"), [(None, True, 2), ("full", True, 2), ("normal", False, 1)])
async def test_writes_are_answered_once_their_log_is_on_the_disk_unless_told_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, flushed: bool, pragma: int) -> None:
    """With FULL the writer commits with NORMAL and ``run_write`` flushes the log itself (off the loop) before it
    answers; with NORMAL nothing waits for the disk."""
    path = tmp_path / "d.db"
    await asyncio.to_thread(upgrade, sqlite_url(path))
    db = Database(sqlite_url(path)) if setting is None else Database(sqlite_url(path), synchronous=setting)
    synced: list[int] = []
    fdatasync = os.fdatasync

    def recording(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    try:
        assert await db.run_write(lambda conn: conn.exec_driver_sql("PRAGMA synchronous").scalar()) == 1
        await db.run_write(lambda conn: conn.exec_driver_sql(
            "INSERT INTO brands (slug, name, created_at) VALUES ('d', 'D', '2026-11-30 00:00:00')"))
        log = Path(f"{path}-wal").stat().st_ino
        assert (log in synced) is flushed and set(synced) <= {log}
        assert await db.run_read(lambda conn: conn.exec_driver_sql("PRAGMA synchronous").scalar()) == pragma
    finally:
        await db.dispose()


def test_an_unknown_synchronous_setting_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="ASSISTANT_SQLITE_SYNCHRONOUS"):
        Settings.from_env({"ASSISTANT_SQLITE_SYNCHRONOUS": "off"})
    assert Settings.from_env({"ASSISTANT_SQLITE_SYNCHRONOUS": "normal"}).sqlite_synchronous == "normal"


async def test_a_backup_taken_while_mentions_arrive_restores_every_acknowledged_mention(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    await asyncio.to_thread(upgrade, sqlite_url(live))
    app = create_app(file_settings(live))
    own = Database(sqlite_url(live))
    kit = await Factory(own).brand("acme")
    await own.dispose()
    acknowledged: dict[int, str] = {}
    async with AsyncTestClient(app) as client:
        async def send(n: int) -> None:
            body = mention(f"m{n}", handle=f"@person{n % 40}", text=f"@acme order {n} is late")
            answer = await client.post("/api/v1/mentions", json=body, headers=kit.ingest)
            assert answer.status_code == 202, answer.text
            acknowledged[answer.json()["id"]] = body["text"]

        await asyncio.gather(*(send(n) for n in range(150)))
        before_backup = dict(acknowledged)
        # the backup runs as the operator runs it, in its own process, while more mentions keep arriving
        backup_file = tmp_path / "backup.db"
        backing_up = asyncio.create_task(asyncio.to_thread(
            assistant, sqlite_url(live), "db", "backup", str(backup_file)))
        await asyncio.gather(*(send(n) for n in range(150, 300)))
        done = await backing_up
        assert done.returncode == 0, done.stderr
        assert "backed up" in done.stdout and backup_file.exists()

    restored = tmp_path / "restored.db"
    shutil.copy(backup_file, restored)
    async with AsyncTestClient(create_app(file_settings(restored))) as client:
        for mention_id, text in before_backup.items():
            answer = await client.get(f"/api/v1/mentions/{mention_id}", headers=kit.read)
            assert answer.status_code == 200, (mention_id, answer.text)
            assert answer.json()["text"] == text
        listed = await client.get("/api/v1/people", headers=kit.read)
        assert listed.status_code == 200 and listed.json()["items"]


def test_a_backup_never_overwrites_and_postgresql_is_sent_to_pg_dump(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    upgrade(sqlite_url(live))
    existing = tmp_path / "existing.db"
    existing.write_text("keep me")
    refused = assistant(sqlite_url(live), "db", "backup", str(existing))
    assert refused.returncode == 1 and "never overwrites" in refused.stderr
    assert existing.read_text() == "keep me"

    postgres = assistant("postgresql://nobody@127.0.0.1:1/none", "db", "backup", str(tmp_path / "pg.db"))
    assert postgres.returncode == 1 and "pg_dump" in postgres.stderr
    assert not (tmp_path / "pg.db").exists()

    missing = assistant(sqlite_url(tmp_path / "nowhere.db"), "db", "backup", str(tmp_path / "b.db"))
    assert missing.returncode == 1 and "no database file" in missing.stderr


async def test_commits_leave_checkpoints_to_the_checkpoint_thread(tmp_path: Path) -> None:
    """The log is copied back by the thread, not inside a commit in the event loop (db/checkpoint.py)."""
    path = tmp_path / "c.db"
    await asyncio.to_thread(upgrade, sqlite_url(path))
    db = Database(sqlite_url(path))
    try:
        assert await db.run_write(lambda conn: conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()) == 0
        for n in range(50):
            await db.run_write(lambda conn, n=n: conn.exec_driver_sql(
                "INSERT INTO brands (slug, name, created_at) VALUES (?, ?, '2026-11-30 00:00:00')",
                (f"b{n}", "B" * 3000)))
        assert db.checkpointer is not None
        for _ in range(100):
            if db.checkpointer.completed:
                break
            await asyncio.sleep(0.05)
        assert db.checkpointer.completed > 0
        # the copied pages are in the database file itself: a reader of the file alone finds the rows
        await db.dispose()
        (tmp_path / "c.db-wal").unlink(missing_ok=True)
        import sqlite3
        assert sqlite3.connect(path).execute("SELECT count(*) FROM brands").fetchone()[0] == 50
    finally:
        await db.dispose()


async def test_writers_hold_off_while_the_checkpoint_thread_waits_to_restart_the_log(tmp_path: Path) -> None:
    """SQLite's busy handler looks for the write lock only now and then, and a writer committing back to back
    held it at nearly every look: on a loaded machine restart after restart gave up and the log grew by
    everything written (104 MB in 3 s in CI). While a restart is wanted, the process's writers wait in the loop
    (for at most ``LOCKED_RETRY_SECONDS``)."""
    path = tmp_path / "h.db"
    await asyncio.to_thread(upgrade, sqlite_url(path))
    db = Database(sqlite_url(path), synchronous="normal")

    def insert(conn: Any) -> None:
        conn.exec_driver_sql("INSERT INTO brands (slug, name, created_at) VALUES ('h', 'H', '2026-12-01 00:00:00')")

    try:
        assert db.checkpointer is not None
        db.checkpointer.restarting = True
        write = asyncio.create_task(db.run_write(insert))
        await asyncio.sleep(0.1)
        assert not write.done()
        db.checkpointer.restarting = False
        await asyncio.wait_for(write, 5)
        assert await db.run_read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM brands").scalar()) == 1
    finally:
        await db.dispose()


async def test_the_log_starts_over_under_steady_writes(tmp_path: Path) -> None:
    """Commits that never stop for long still let the log start over (a RESTART checkpoint past
    ``RESTART_FRAMES``): with passive checkpoints alone it grew by everything written (60-170 MB after 10 s of
    single ingest)."""
    path = tmp_path / "s.db"
    await asyncio.to_thread(upgrade, sqlite_url(path))
    db = Database(sqlite_url(path), synchronous="normal")
    log = tmp_path / "s.db-wal"
    written = 0

    async def write_for(seconds: float) -> None:
        nonlocal written
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            await db.run_write(lambda conn, n=written: conn.exec_driver_sql(
                "INSERT INTO brands (slug, name, created_at) VALUES (?, ?, '2026-11-30 00:00:00')",
                (f"b{n}", "B" * 3000)))
            written += 1

    try:
        await write_for(3.0)
        assert db.checkpointer is not None and db.checkpointer.restarts > 0
        # each commit appends four pages (about 17 KB) to a log that never starts over; one that does stays at
        # what the longest stretch between two restarts wrote
        assert log.stat().st_size < written * 8192, (log.stat().st_size, written)
        assert await db.run_read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM brands").scalar()) == written
    finally:
        await db.dispose()
