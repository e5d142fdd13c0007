"""PostgreSQL out of reach is a 503 with Retry-After, never a 500 with a traceback, and the service comes back by
itself when PostgreSQL does. The outages are real: a port nobody listens on, a backend terminated in the middle of
a transaction, and the service's own connections cut by a TCP relay between it and the server (``Cable``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, make_url, select, text

from assistant.app import create_app
from assistant.db import Database
from assistant.db.people import Interaction
from assistant.errors import Overloaded
from assistant.model.local_model import free_port
from assistant.settings import Settings
from tests.support.db import scalar
from tests.support.factories import BrandKit, mention

pytestmark = pytest.mark.postgres


class Cable:
    """A TCP relay to the real server that can be cut (the listener closed and every connection dropped, as when
    the server's host goes away) and mended on the same port. It runs on a loop of its own in a thread: the test
    client holds the test's loop while the app answers."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def mend(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(10)

    def close(self) -> None:
        if self._server is not None and self._server.is_serving():
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _drop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, server_writer}
        await asyncio.gather(self._pipe(reader, server_writer), self._pipe(server_reader, writer))


@pytest.fixture
def cable(settings: Settings) -> Iterator[tuple[Cable, str]]:
    """The relay, and the database URL that goes through it."""
    url = make_url(settings.database_url)
    relay = Cable(url.host or "127.0.0.1", url.port or 5432)
    relay.mend()
    try:
        yield relay, url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    finally:
        relay.close()


async def test_a_server_nobody_answers_is_a_503_with_retry_after_and_no_password_told(
        caplog: pytest.LogCaptureFixture) -> None:
    db = Database(f"postgresql://postgres:pw-not-to-be-told@127.0.0.1:{free_port()}/test")
    try:
        for run in (db.run_read, db.run_write):
            with pytest.raises(Overloaded) as refused:
                await run(lambda conn: conn.execute(text("SELECT 1")).scalar_one())
            assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "2"}
            assert refused.value.detail == "The database cannot be reached right now; retry shortly"
    finally:
        await db.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "assistant.db"]
    assert len(warnings) == 2 and all("PostgreSQL cannot be reached: ConnectionRefusedError" in w for w in warnings)
    assert "pw-not-to-be-told" not in caplog.text


async def test_a_write_whose_backend_is_terminated_mid_transaction_is_a_503_and_the_next_write_works(
        db: Database) -> None:
    def terminated(conn: Any) -> None:
        conn.execute(text("CREATE TEMPORARY TABLE scratch (n int)"))
        conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    with pytest.raises(Overloaded):
        await db.run_write(terminated)
    assert await db.run_write(lambda conn: conn.execute(text("SELECT 41 + 1")).scalar_one()) == 42


async def test_the_api_answers_503_while_postgresql_is_out_of_reach_and_recovers_by_itself(
        settings: Settings, kit: BrandKit, db: Database, cable: tuple[Cable, str],
        caplog: pytest.LogCaptureFixture) -> None:
    relay, url = cable
    app = create_app(dataclasses.replace(settings, database_url=url))
    caplog.set_level(logging.WARNING)
    async with AsyncTestClient(app) as client:
        first = await client.post("/api/v1/mentions", json=mention("before-1"), headers=kit.ingest)
        assert first.status_code == 202, first.text
        person = first.json()["person_id"]
        relay.cut()
        during = mention("during-1")
        for response in (await client.post("/api/v1/mentions", json=during, headers=kit.ingest),
                         await client.get(f"/api/v1/people/{person}/history", headers=kit.read)):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"] == "The database cannot be reached right now; retry shortly"
        relay.mend()
        again = await client.post("/api/v1/mentions", json=during, headers=kit.ingest)
        assert again.status_code == 202, again.text
        history = await client.get(f"/api/v1/people/{person}/history", headers=kit.read)
        assert history.status_code == 200 and len(history.json()["items"]) == 2
    assert await scalar(db, select(func.count()).select_from(Interaction)) == 2
    assert "unhandled error" not in caplog.text and "Traceback" not in caplog.text
