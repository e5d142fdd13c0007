"""Issue 13, finding 6: rate limits hold across processes. Each test runs two apps on one database, as two
``serve`` processes would: the per-minute limit of an API key and of a user's pages, and sign-in attempts, are
counted in the database, so what one process allowed the other does not allow again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from assistant.app import create_app
from assistant.auth.guards import RateLimiter
from assistant.db import Database
from assistant.errors import RateLimited
from assistant.settings import Settings
from tests.integration.test_sign_in import form_token, post_login
from tests.integration.test_web import sign_in
from tests.support.factories import BrandKit


@pytest.fixture
async def two_processes(settings: Settings) -> AsyncIterator[tuple[Any, Any]]:
    """Two apps, each with its own services and memory, on the test database; one request a minute each caller."""
    limited = settings.replace(rate_limit_per_minute=1)
    async with AsyncTestClient(create_app(limited)) as first, AsyncTestClient(create_app(limited)) as second:
        yield first, second


async def test_an_api_key_gets_its_allowance_once_across_two_processes(two_processes, kit: BrandKit) -> None:
    first, second = two_processes
    answers = [await client.get("/api/v1/people", headers=kit.read) for client in (first, second) * 3]

    assert [a.status_code for a in answers] == [200] + [429] * 5
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers[1:])
    assert answers[1].headers["content-type"].startswith("application/problem+json")
    other_key = await second.get("/api/v1/people", headers=kit.reviewer)
    assert other_key.status_code == 200, "another caller has an allowance of its own"


async def test_a_users_pages_get_their_allowance_once_across_two_processes(two_processes, kit: BrandKit) -> None:
    first, second = two_processes
    assert (await sign_in(first, kit.reviewer_email, kit.password)).status_code == 303
    second.cookies.update(first.cookies)  # the same session, on the other process

    pages = [await first.get("/"), await second.get("/"), await first.get("/audit"), await second.get("/fairness")]

    assert [p.status_code for p in pages] == [200, 429, 429, 429]
    assert int(pages[1].headers["retry-after"]) >= 1 and "text/html" in pages[1].headers["content-type"]


async def test_sign_in_attempts_are_counted_across_two_processes(settings: Settings, kit: BrandKit) -> None:
    """Wrong passwords for one account from one address, spread over two processes: the allowance is shared."""
    async with AsyncTestClient(create_app(settings)) as first, AsyncTestClient(create_app(settings)) as second:
        tokens = {first: await form_token(first), second: await form_token(second)}
        answers = [await post_login(client, tokens[client], kit.reviewer_email, "wrong password")
                   for client in (first, second) * settings.login_max_failures]

    statuses = [a.status_code for a in answers]
    assert statuses[:settings.login_max_failures] == [401] * settings.login_max_failures
    assert 429 in statuses[settings.login_max_failures:]



async def test_requests_arriving_together_share_one_refill(db: Database) -> None:
    """300 requests of one caller at once in one process, well inside a generous limit: each used to take its own
    share of the allowance from the database before any came back, spent the minute's burst and got 429 (two
    ``serve`` processes refused a burst of ingest that way)."""
    limiter = RateLimiter(db, 1_000_000)

    outcomes = await asyncio.gather(*(limiter.hit("key") for _ in range(300)), return_exceptions=True)

    assert [o for o in outcomes if o is not None] == []


async def test_requests_arriving_together_past_the_limit_are_refused_together(db: Database) -> None:
    limiter = RateLimiter(db, 50)  # a burst of a tenth of the minute's: 5

    outcomes = await asyncio.gather(*(limiter.hit("key") for _ in range(40)), return_exceptions=True)

    assert outcomes.count(None) == 5
    assert all(isinstance(o, RateLimited) for o in outcomes if o is not None)
