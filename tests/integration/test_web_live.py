"""The live queue's event stream (/queue/events) against the real app under uvicorn: events follow changes made
in other transactions, only the viewer's brand, sign-in required, a bounded number of streams per process, and
a shutdown that is not held up by open streams."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from assistant.settings import Settings
from tests.browser.seed import waiting_turn
from tests.integration.test_web import sign_in
from tests.support.served import Served, served_app

NOTHING_WITHIN = 1.5
"""Seconds (fifteen checks) in which a stream must stay silent after a change of another brand."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(live_check_seconds=0.1, live_streams_max=1, live_stream_seconds=300)


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    """The app in a uvicorn thread with its own event loop, built the way ``assistant serve`` builds it."""
    with served_app(settings) as app:
        yield app


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.base, timeout=20) as client:
        yield client


class Stream:
    """An open stream whose ``queue`` events are collected by a task as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        name, data = None, []
        async for line in self.response.aiter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif not line and name is not None:
                if name == "queue":
                    await self.events.put(json.loads("\n".join(data)))
                name, data = None, []

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)


async def open_stream(http: httpx.AsyncClient, stack: Any) -> Stream:
    response = await stack.enter_async_context(http.stream("GET", "/queue/events"))
    assert response.status_code == 200, response.status_code
    assert response.headers["content-type"].startswith("text/event-stream")
    return Stream(response)


async def test_events_follow_changes_of_the_viewers_brand_made_in_other_transactions(http, factory, db) -> None:
    kit, other = await factory.brand(), await factory.brand()
    await sign_in(http, kit.reviewer_email, kit.password)
    async with AsyncExitStack() as stack:
        stream = await open_stream(http, stack)
        first = await stream.next()
        assert first["waiting"] == 0 and first["escalated"] == 0

        await waiting_turn(db, other.id, handle="@olga", text="@other hi", draft="Hi Olga")
        await asyncio.sleep(NOTHING_WITHIN)
        assert stream.events.empty(), "another brand's change reached this brand's stream"

        await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
        event = await stream.next()
        while event["waiting"] != 1:  # the turn is first drafting, then waiting: one or two events
            event = await stream.next()
        assert event["version"] != first["version"]
        stream.task.cancel()


async def test_signed_out_gets_401_and_no_stream(http) -> None:
    answer = await http.get("/queue/events")
    assert answer.status_code == 401
    assert not answer.headers.get("content-type", "").startswith("text/event-stream")


async def test_streams_past_the_limit_answer_503_and_a_closed_one_frees_its_place(http, served, factory) -> None:
    kit = await factory.brand()
    await sign_in(http, kit.reviewer_email, kit.password)
    async with AsyncExitStack() as stack:
        stream = await open_stream(http, stack)
        await stream.next()
        refused = await http.get("/queue/events")
        assert refused.status_code == 503 and refused.headers.get("retry-after")
        stream.task.cancel()
    deadline = time.monotonic() + 15  # the server hears of the closed connection at its next step
    while True:
        async with http.stream("GET", "/queue/events") as again:
            if again.status_code == 200:
                break
        assert time.monotonic() < deadline, "the closed stream kept its place"
        await asyncio.sleep(0.2)


async def test_shutdown_ends_open_streams_instead_of_waiting_for_them(http, served, factory) -> None:
    """Streams live 300 s here; uvicorn waits for every open response, so without ``stop()`` the server would
    still be running at the join below."""
    kit = await factory.brand()
    await sign_in(http, kit.reviewer_email, kit.password)
    async with AsyncExitStack() as stack:
        stream = await open_stream(http, stack)
        await stream.next()
        served.server.should_exit = True
        await asyncio.to_thread(served.thread.join, 20)
        assert not served.thread.is_alive(), "the server is still waiting for the open stream"
        await asyncio.wait_for(stream.task, 5)  # and the stream was ended, not cut
