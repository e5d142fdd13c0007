"""The real app served by uvicorn on 127.0.0.1 and a free port, against the test database, driven by Debian's
chromium through Playwright (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from assistant.settings import Settings
from tests.conftest import require_or_skip
from tests.support.served import served_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with a short undo window, so a held approval reaches the server within the test."""
    return settings.replace(undo_seconds=1.5)


async def until(check: Any, timeout: float = 10.0) -> Any:
    """Poll an async ``check`` until it answers something truthy (the page sends held approvals later)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    """The app as production builds it, in a uvicorn thread with its own event loop."""
    with served_app(settings) as served:
        yield served.base


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not os.path.exists(CHROMIUM):
        require_or_skip("browser", f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        await instance.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context()
    tab = await context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    await context.close()


async def sign_in(page: Any, base: str, email: str, password: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


__all__ = ["sign_in", "until"]
