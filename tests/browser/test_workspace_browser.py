"""The reviewer's workspace in Chromium: a phone and a desk, the live list, two reviewers on one card, saved
replies by ";", and axe finding nothing at all on the reviewer's and admin's pages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from assistant.db.outbox import Reply
from assistant.db.turns import Turn
from tests.browser.conftest import sign_in, until
from tests.browser.seed import waiting_turn
from tests.support.db import execute, scalar

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1440, "height": 900}


async def opened(browser: Any, base: str, email: str, password: str, viewport: dict[str, int]) -> tuple[Any, Any]:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    await sign_in(page, base, email, password)
    return context, page


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
async def test_no_accessibility_violations_and_nothing_wider_than_the_screen(browser, live_server, factory, db,
                                                                            viewport) -> None:
    from axe_playwright_python.async_playwright import Axe

    kit = await factory.brand()
    turn_id, person_id, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="We guarantee it!",
                                               findings=[{"rule": "banned_pattern", "severity": "block",
                                                          "message": "no promises", "start": 3, "end": 12}])
    await waiting_turn(db, kit.id, handle="@bo", text="@acme hello there, a long message " * 4, draft="Hi Bo")
    context, page = await opened(browser, live_server, kit.admin_email, kit.password, viewport)
    try:
        found, wide = {}, {}
        for path in ("/", "/?status=escalated", f"/people/{person_id}", "/audit", "/fairness", "/admin/users",
                     "/admin/keys", "/admin/snippets", "/admin/policy"):
            await page.goto(f"{live_server}{path}")
            results = await Axe().run(page)
            found[path] = [(v["id"], v["impact"]) for v in results.response["violations"]]
            wide[path] = await page.evaluate("document.documentElement.scrollWidth")
        assert all(not v for v in found.values()), found
        assert all(w <= viewport["width"] for w in wide.values()), wide
    finally:
        await context.close()


async def test_on_a_phone_the_list_and_person_stack_and_approve_stays_on_screen(browser, live_server, factory,
                                                                               db) -> None:
    kit = await factory.brand()
    for i in range(8):
        await waiting_turn(db, kit.id, handle=f"@p{i}", text=f"@acme question {i} " * 8, draft=f"Answer {i} " * 20,
                           minutes_ago=60 - i)
    context, page = await opened(browser, live_server, kit.reviewer_email, kit.password, PHONE)
    try:
        boxes = await page.evaluate("""() => {
            const r = (s) => document.querySelector(s).getBoundingClientRect();
            return {list: r('#waiting-list'), pane: r('#person'), approve: r('#person .actions button.primary')};
        }""")
        assert boxes["pane"]["top"] >= boxes["list"]["bottom"]  # stacked, the person below the list
        assert 0 <= boxes["approve"]["top"] and boxes["approve"]["bottom"] <= PHONE["height"]
        await page.mouse.wheel(0, 600)
        await page.wait_for_timeout(200)
        bottom = await page.evaluate("document.querySelector('#person .actions button.primary')"
                                     ".getBoundingClientRect().bottom")
        assert bottom <= PHONE["height"]
    finally:
        await context.close()


async def test_the_list_follows_the_queue_without_a_reload(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!", minutes_ago=30)
    t2, _, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme hello", draft="Hi Bo", minutes_ago=20)
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.evaluate("window.__same_page = true")

    t3, _, _ = await waiting_turn(db, kit.id, handle="@cy", text="@acme new here", draft="Welcome Cy", minutes_ago=1)
    await page.wait_for_selector(f"#turn-{t3}", timeout=15_000)
    assert await page.inner_text("#waiting-count") == "3"
    # Bo's turn is taken elsewhere (a regenerate sends it back to drafting): it leaves the list.
    await execute(db, update(Turn).where(Turn.id == t2).values(status="drafting", version=Turn.version + 1))
    await page.wait_for_selector(f"#turn-{t2}", state="detached", timeout=15_000)
    assert await page.inner_text("#waiting-count") == "2"
    assert await page.evaluate("window.__same_page") is True


async def test_two_reviewers_on_one_card(browser, live_server, factory, db) -> None:
    kit = await factory.brand()
    turn_id, _, draft_id = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await waiting_turn(db, kit.id, handle="@bo", text="@acme hi", draft="Hi Bo", minutes_ago=1)
    ctx_a, reviewer = await opened(browser, live_server, kit.reviewer_email, kit.password, DESK)
    ctx_b, admin = await opened(browser, live_server, kit.admin_email, kit.password, DESK)
    try:
        await admin.click(f"#text-{turn_id}")
        await admin.keyboard.type(" It ships today.")
        await reviewer.reload()
        await reviewer.locator("#presence", has_text="admin").wait_for()  # the page's CSP allows no eval
        # The admin approves first; the reviewer's own approval arrives after and is refused, text kept.
        await admin.keyboard.press("Control+Enter")
        await reviewer.click(f"#text-{turn_id}")
        await reviewer.keyboard.press("Control+a")
        await reviewer.keyboard.type("Sorry Ana, my own words.")

        async def admin_won() -> bool:
            return await scalar(db, select(Reply.text).where(Reply.turn_id == turn_id)) is not None
        assert await until(admin_won)
        await reviewer.keyboard.press("Control+Enter")
        await reviewer.locator("#toast.error").wait_for()
        assert "approved a reply" in await reviewer.inner_text("#toast")
        await reviewer.keyboard.press("s")
        await reviewer.wait_for_selector("#person .lost")
        assert await reviewer.input_value(f"#mine-{turn_id}") == "Sorry Ana, my own words."
        assert "It ships today." in await reviewer.inner_text("#person .lost")
        await reviewer.keyboard.press("d")
        await reviewer.wait_for_selector(f"#person:not([data-turn='{turn_id}'])")
        assert await scalar(db, select(Reply.text).where(Reply.turn_id == turn_id)) == "Sorry Ana! It ships today."
    finally:
        await ctx_a.close()
        await ctx_b.close()
    del draft_id


async def test_a_saved_reply_is_inserted_by_semicolon(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    turn_id, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme refund?", draft="Hi Ana.",
                                       author={"handle": "@ana", "display_name": "Ana López"})
    async with httpx.AsyncClient(base_url=live_server) as api:
        made = await api.post("/api/v1/snippets", headers=kit.admin,
                              json={"name": "Refund", "text": "Your refund is on its way, {first_name}."})
        assert made.status_code == 201
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.keyboard.press("e")
    await page.keyboard.type(" ")
    await page.keyboard.press(";")
    assert await page.evaluate("document.activeElement.id") == f"snippet-{turn_id}"
    await page.keyboard.type("ref")
    await page.keyboard.press("Enter")
    assert await page.input_value(f"#text-{turn_id}") == "Hi Ana. Your refund is on its way, Ana."
    # A semicolon inside a sentence stays a semicolon.
    await page.keyboard.type(" Thanks; bye")
    assert (await page.input_value(f"#text-{turn_id}")).endswith("Thanks; bye")


async def test_the_api_docs_work_offline(page, live_server) -> None:
    """Every request that leaves the machine is refused: the docs page still renders (its assets are ours)."""
    outside: list[str] = []

    async def only_local(route: Any) -> None:
        if route.request.url.startswith(live_server):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    page.set_default_timeout(40_000)  # a 1.5 MB script through the route handler on a busy machine
    await page.route("**/*", only_local)
    await page.goto(f"{live_server}/schema")
    await page.wait_for_selector(".swagger-ui .info .title")
    assert "Reply assistant API" in await page.inner_text(".swagger-ui .info .title")
    assert await page.locator(".opblock").count() > 10
    assert outside == []
