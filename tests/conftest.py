"""Fixtures: settings first, then the database (SQLite by default, PostgreSQL when
``ASSISTANT_TEST_DATABASE_URL`` names one), then the app and a client, then data factories.

A missing service skips its tests on a newcomer's machine; with ``ASSISTANT_TEST_REQUIRE`` (CI sets it to
``postgres,browser``) a missing service fails the run instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import Connection

from assistant.app import create_app
from assistant.db import Database
from assistant.db.migrate import upgrade
from assistant.db.models import Base
from assistant.processes import REQUEST_LOGGERS, quiet_request_logs
from assistant.services import Services
from assistant.settings import Settings
from tests.support.cli import run_cli
from tests.support.factories import BrandKit, Factory

pytest_plugins = ["tests.support.fake_llm"]

TEST_DATABASE_URL = os.environ.get("ASSISTANT_TEST_DATABASE_URL", "")
REQUIRED = {s.strip() for s in os.environ.get("ASSISTANT_TEST_REQUIRE", "").split(",") if s.strip()}


def require_or_skip(service: str, reason: str) -> None:
    """Skip for a newcomer; fail where the run must prove this service was tested (CI)."""
    if service in REQUIRED:
        pytest.fail(f"{service} is required in this run but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


DATABASE_UNDER_TEST = "postgresql" if TEST_DATABASE_URL.startswith("postgres") else "sqlite"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The local-model tier takes minutes, so ``make test`` leaves it out: it runs when asked for
    (``-m local_model``, as ``make test-local`` and CI do) or required (``ASSISTANT_TEST_REQUIRE``).
    A test marked ``postgres`` (or ``sqlite``) proves something of that database alone: the run on the other
    database skips it, saying so."""
    local_model_wanted = "local_model" in (config.getoption("markexpr") or "") or "local_model" in REQUIRED
    skip_local = pytest.mark.skip(reason="the local-model tier runs with `make test-local`")
    for item in items:
        if "local_model" in item.keywords and not local_model_wanted:
            item.add_marker(skip_local)
        for only in ("postgres", "sqlite"):
            if item.get_closest_marker(only) and not DATABASE_UNDER_TEST.startswith(only):
                item.add_marker(pytest.mark.skip(reason=f"{only} only; this run is on {DATABASE_UNDER_TEST}"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"database under test: {DATABASE_UNDER_TEST}"


@pytest.fixture(scope="session", autouse=True)
def _database_in_report(record_testsuite_property) -> None:  # type: ignore[no-untyped-def]
    """CI reads this from the JUnit report to prove which database the run used."""
    record_testsuite_property("database", DATABASE_UNDER_TEST)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database for the whole session; each test starts from empty tables."""
    if TEST_DATABASE_URL.startswith("postgres"):
        url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+asyncpg://")
        import asyncio

        import asyncpg

        async def reset() -> None:
            conn = await asyncpg.connect(TEST_DATABASE_URL.replace("+asyncpg", ""))
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
            await conn.close()

        try:
            asyncio.run(reset())
        except (OSError, asyncpg.PostgresError) as exc:
            require_or_skip("postgres", f"PostgreSQL unreachable: {exc}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def clean_tables(database_url: str) -> None:
    db = Database(database_url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]

    def empty(conn: Connection) -> None:
        if conn.dialect.name == "sqlite":
            for name in tables:
                conn.exec_driver_sql(f"DELETE FROM {name}")
        else:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

    await db.run_write(empty)
    await db.dispose()


@pytest.fixture
def settings(database_url: str, clean_tables: None) -> Settings:
    return Settings(database_url=database_url, secret_key="test-secret-key-not-for-production",
                    rate_limit_per_minute=100_000, llm_backoff_initial_seconds=0.01, llm_backoff_max_seconds=0.05,
                    llm_timeout_seconds=2.0, job_poll_seconds=0.05,
                    webhook_allow_private_addresses=True)  # the tests' receivers listen on loopback


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Litestar]:
    yield create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        yield client


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The test's own engine on the test's event loop. The app keeps its own (``app_services(app).db``): the test
    client serves the app from another event loop, and a connection must stay on the loop that opened it."""
    database = Database(settings.database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def state(settings: Settings) -> AsyncIterator[Services]:
    """The worker's side (``tests.support.worker.drain``), on the test's own event loop: the app under the test
    client runs on another loop, and an asyncpg connection must not cross loops."""
    services = Services.build(settings)
    yield services
    await services.db.dispose()


@pytest.fixture
async def factory(db: Database) -> Factory:
    return Factory(db)


@pytest.fixture
async def kit(factory: Factory) -> BrandKit:
    """A brand with a key of every scope, a reviewer and an admin (``tests.support.factories.BrandKit``)."""
    return await factory.brand()


@pytest.fixture
def cli(settings: Settings) -> Callable[..., Result]:
    """``cli("brands", "create", ...)``: the ``assistant`` command in this process on the test database, with the
    tests' secret key and webhook allowance (see ``tests.support.cli``); from an async test,
    ``await asyncio.to_thread(cli, ...)``."""
    the_tests_own = {"ASSISTANT_SECRET_KEY": settings.secret_key,
                     "ASSISTANT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": str(settings.webhook_allow_private_addresses)}
    return lambda *args, stdin=None: run_cli(settings.database_url, *args, stdin=stdin, env=the_tests_own)


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parents[1]


@pytest.fixture
def service_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The log as every process of the service writes it (INFO, the HTTP clients' request lines kept out by
    ``processes.quiet_request_logs``); the loggers' levels are put back afterwards."""
    before = {name: logging.getLogger(name).level for name in REQUEST_LOGGERS}
    quiet_request_logs()
    caplog.set_level(logging.INFO)
    yield caplog
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)
