"""The live queue in Chromium: with server-sent events a new mention appears and a turn taken elsewhere goes
without a reload, long before the page would poll; without EventSource the page polls."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from assistant.settings import Settings
from tests.browser.conftest import sign_in, until
from tests.browser.seed import store_draft, waiting_turn
from tests.support.factories import mention

pytestmark = pytest.mark.browser
SOON_MS = 3000
"""Well inside a poll interval of 60 s: only the event stream can have brought the change this fast."""
WATCH_FOR_RETURN = """id => {
  window.cameBack = false;
  new MutationObserver(() => { if (document.getElementById(id)) { window.cameBack = true; } })
    .observe(document, {childList: true, subtree: true});
}"""
"""Sets ``window.cameBack`` once an element with ``id`` appears; a reload of the page loses the flag."""


@pytest.fixture
def poll_seconds() -> float:
    return 60.0


@pytest.fixture
def settings(settings: Settings, poll_seconds: float) -> Settings:
    return settings.replace(queue_poll_seconds=poll_seconds, live_check_seconds=0.2)


async def ingest_through_the_api(base: str, kit: Any, db: Any, handle: str) -> int:
    """A mention through the API, then the draft stored as the drafting worker stores it (the turn waits)."""
    async with httpx.AsyncClient(base_url=base) as api:
        answer = await api.post("/api/v1/mentions", json=mention(handle=handle, text=f"{handle} hi @acme"),
                                headers=kit.ingest)
        assert answer.status_code == 202, answer.text
    turn_id: int = answer.json()["turn_id"]
    await store_draft(db, turn_id, "Hello!")
    return turn_id


async def test_events_bring_new_and_taken_turns_without_a_reload(page: Any, live_server, factory, db) -> None:
    kit = await factory.brand()
    first, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.wait_for_selector('#workspace[data-live="events"]')
    assert await page.locator("#waiting-count").inner_text() == "1"

    arrived = await ingest_through_the_api(live_server, kit, db, "@bo")
    await page.wait_for_selector(f"#turn-{arrived}", timeout=SOON_MS)
    await page.wait_for_function("document.getElementById('waiting-count').textContent === '2'", timeout=SOON_MS)

    # Another reviewer rejects Bo through the API: his row goes, the count follows.
    async with httpx.AsyncClient(base_url=live_server) as api:
        taken = await api.post(f"/api/v1/turns/{arrived}/reject", headers=kit.admin, json={"reason": "spam"})
        assert taken.status_code == 200, taken.text
    await page.wait_for_selector(f"#turn-{arrived}", state="detached", timeout=SOON_MS)
    await page.wait_for_function("document.getElementById('waiting-count').textContent === '1'", timeout=SOON_MS)
    assert await page.get_attribute("#person", "data-turn") == str(first)  # the person in focus stays


@pytest.mark.parametrize("poll_seconds", [0.5])
async def test_without_eventsource_the_page_polls(page: Any, live_server, factory, db) -> None:
    kit = await factory.brand()
    await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await page.add_init_script("delete window.EventSource;")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    arrived = await ingest_through_the_api(live_server, kit, db, "@bo")
    await page.wait_for_selector(f"#turn-{arrived}")
    assert await page.get_attribute("#workspace", "data-live") is None


async def test_a_list_read_answered_before_a_decision_does_not_bring_the_person_back(page: Any, live_server, factory,
                                                                                    db) -> None:
    """A refresh of the list that the server answered while the person still waited, arriving after the reviewer
    decided, is stale: it must not put them back (the regenerate test failed this way under load)."""
    kit = await factory.brand()
    first, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await page.add_init_script("delete window.EventSource;")  # no event's read overtakes the held one (polls: 60 s)
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    held: list[Any] = []

    async def hold_the_first_read(route: Any) -> None:
        if route.request.method == "GET" and route.request.resource_type == "fetch" and not held:
            held.append((route, await route.fetch()))  # the list as it is now, handed to the page later
        else:
            await route.continue_()

    async def read_held() -> bool:
        return bool(held)

    await page.route(lambda url: urlsplit(url).path == "/", hold_the_first_read)
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # the page reads its list
    assert await until(read_held)
    await page.keyboard.press("g")
    await page.keyboard.type("mention the tracking link")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#waiting-list .empty")
    route, stale = held[0]
    assert f'id="turn-{first}"' in await stale.text()  # the read did see them waiting
    await page.evaluate(WATCH_FOR_RETURN, f"turn-{first}")
    await route.fulfill(response=stale)
    await page.wait_for_timeout(500)
    # The row never came back (it did, and the page then reloaded itself to show the person: cameBack is gone).
    assert await page.evaluate("window.cameBack") is False
    assert await page.locator("#waiting-list .empty").count() == 1

