"""Issue 13, finding 8: a database the process may not write is refused at start-up in one line, not with a
traceback at the first write: a read-only SQLite file or folder; on PostgreSQL a role whose transactions are
read-only (``default_transaction_read_only``) or that may not write the service's tables."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, make_url

from assistant.db import Database
from assistant.db.migrate import upgrade
from assistant.settings import Settings

COMMANDS = [pytest.param(["serve", "--port", "1"], id="serve"), pytest.param(["worker"], id="worker")]


def start(command: list[str], url: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env |= {"ASSISTANT_DATABASE_URL": url, "ASSISTANT_SECRET_KEY": settings.secret_key}
    return subprocess.run([sys.executable, "-m", "assistant", *command], capture_output=True, text=True, env=env,
                          timeout=60)


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr


@pytest.mark.sqlite
@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_database_file_is_refused(tmp_path: Path, settings: Settings, command: list[str]) -> None:
    path = tmp_path / "read-only.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"  # read-only whoever runs it (root included)

    assert_refused_in_one_line(start(command, url, settings), "cannot write the database", "readonly")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a migrated database, which nobody may write to afterwards: ``chattr +i`` for root
    (whom permissions do not stop), the folder's mode for anyone else."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    upgrade(f"sqlite+aiosqlite:///{folder / 'assistant.db'}")
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"this file system cannot make a folder immutable for root: {made.stderr.strip()}")
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


@pytest.mark.sqlite
@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_in_a_read_only_folder_is_refused(read_only_folder: Path, settings: Settings,
                                                     command: list[str]) -> None:
    """SQLite writes its journal beside the file: a writable file in a folder it may not write is read-only."""
    url = f"sqlite:///{read_only_folder / 'assistant.db'}"

    assert_refused_in_one_line(start(command, url, settings), "cannot write the database", "its folder")


@pytest.fixture
async def role(db: Database) -> Iterator[str]:
    """A login role of its own that may read the service's tables and nothing more; dropped afterwards."""
    name = f"test_ro_{uuid.uuid4().hex[:10]}"

    def create(conn: Connection) -> None:
        conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {name}")
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")

    await db.run_write(create)
    yield name

    def drop(conn: Connection) -> None:
        conn.exec_driver_sql(f"DROP OWNED BY {name}")
        conn.exec_driver_sql(f"DROP ROLE {name}")

    await db.run_write(drop)


def as_role(settings: Settings, name: str) -> str:
    return make_url(settings.database_url).set(username=name, password=None).render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS)
async def test_a_read_only_postgresql_role_is_refused(db: Database, role: str, settings: Settings,
                                                      command: list[str]) -> None:
    """Every write of this role would fail: its transactions are read-only (as on a standby)."""
    await db.run_write(lambda conn: conn.exec_driver_sql(f"ALTER ROLE {role} SET default_transaction_read_only = on"))
    await db.run_write(lambda conn: conn.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))

    result = start(command, as_role(settings, role), settings)

    assert_refused_in_one_line(result, "cannot write the database", "read-only", "default_transaction_read_only")


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS)
async def test_a_postgresql_role_that_may_only_read_is_refused(role: str, settings: Settings,
                                                               command: list[str]) -> None:
    result = start(command, as_role(settings, role), settings)

    assert_refused_in_one_line(result, "cannot write the database", "permission denied for table jobs")
