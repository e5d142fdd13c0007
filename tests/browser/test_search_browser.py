"""Searching the queue in Chromium, at a desk and on a phone, with JavaScript and without; and the follow-up a
reviewer sends when someone else decided the card first, by one key or by a button."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from assistant.db.outbox import Reply
from assistant.db.turns import Draft, Turn
from tests.browser.conftest import sign_in, until
from tests.browser.seed import waiting_turn
from tests.browser.test_workspace_browser import DESK, PHONE, opened
from tests.support.db import one, scalar

pytestmark = pytest.mark.browser


def rows(page: Any) -> Any:
    return page.eval_on_selector_all("#waiting-list li.row", "rows => rows.map(r => Number(r.dataset.turn))")


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
async def test_slash_searches_and_the_live_list_keeps_to_the_search(browser, live_server, factory, db,
                                                                   viewport) -> None:
    from axe_playwright_python.async_playwright import Axe

    kit = await factory.brand()
    ana, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme refund please", draft="Hi Ana.",
                                   minutes_ago=30)
    bo, _, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme the mug broke", draft="Oh no, Bo.",
                                  minutes_ago=20)
    cy, _, _ = await waiting_turn(db, kit.id, handle="@cy", text="@acme my refund?", draft="Hi Cy.", minutes_ago=10)
    context, page = await opened(browser, live_server, kit.reviewer_email, kit.password, viewport)
    try:
        await page.keyboard.press("?")
        assert "search the queue" in await page.inner_text("#keys-help")
        await page.keyboard.press("Escape")
        await page.keyboard.press("/")
        assert await page.evaluate("document.activeElement.id") == "q"
        await page.keyboard.press("Tab")
        await page.keyboard.press("Tab")  # to Words
        assert await page.evaluate("document.activeElement.id") == "search-text"
        await page.keyboard.type("refund")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{live_server}/?text=refund")
        assert await rows(page) == [ana, cy]
        assert await page.inner_text("#waiting-count") == "2"
        assert await page.input_value("#search-text") == "refund"

        # Keys still work inside the search: j moves, a approves the person in focus.
        await page.keyboard.press("j")
        await page.wait_for_selector(f'#person[data-turn="{cy}"]')
        assert "text=refund" in page.url
        # The live list keeps to the search: a new refund question appears, a new other one does not.
        other, _, _ = await waiting_turn(db, kit.id, handle="@dee", text="@acme hello", draft="Hi Dee.", minutes_ago=1)
        late, _, _ = await waiting_turn(db, kit.id, handle="@ed", text="@acme refund for me too", draft="Hi Ed.",
                                        minutes_ago=1)
        await page.wait_for_selector(f"#turn-{late}", timeout=15_000)
        assert await rows(page) == [ana, cy, late] and other not in await rows(page)
        assert await page.inner_text("#waiting-count") == "3"
        assert bo not in await rows(page)

        results = await Axe().run(page)
        assert [(v["id"], v["impact"]) for v in results.response["violations"]] == []
        assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        if viewport is PHONE:  # the search does not push the decision off the screen
            bottom = await page.evaluate("document.querySelector('#person .actions button.primary')"
                                         ".getBoundingClientRect().bottom")
            assert bottom <= PHONE["height"]
    finally:
        await context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
async def test_search_without_javascript(browser, live_server, factory, db, viewport) -> None:
    kit = await factory.brand()
    ana, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme refund please", draft="Hi Ana.",
                                   minutes_ago=40, platform="mastodon")
    await waiting_turn(db, kit.id, handle="@bo", text="@acme hi", draft="Hi Bo.", minutes_ago=30)
    cy, _, _ = await waiting_turn(db, kit.id, handle="@cy", text="@acme hello", draft="Hi Cy.", minutes_ago=20,
                                  platform="mastodon")
    context = await browser.new_context(java_script_enabled=False, viewport=viewport)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        await sign_in(page, live_server, kit.reviewer_email, kit.password)
        await page.select_option("#search-platform", "mastodon")
        await page.click("#search button[type=submit]")
        await page.wait_for_url(f"{live_server}/?person=&handle=&text=&platform=mastodon&first_contact=&rule=")
        assert await rows(page) == [ana, cy]
        assert await page.inner_text("#waiting-count") == "2"

        # A page of one: the next page keeps the search.
        await page.goto(f"{live_server}/?platform=mastodon&limit=1")
        assert await rows(page) == [ana]
        await page.click("#waiting-list .more a")
        assert await rows(page) == [cy]
        assert parse_qs(urlsplit(page.url).query)["platform"] == ["mastodon"]

        # A decision taken from the search comes back to it.
        await page.click("#person .actions button.primary")
        await page.wait_for_url(f"{live_server}/?platform=mastodon&limit=1&notice=approved")
        assert await rows(page) == [ana]

        # A value that cannot be used is said in words, and the page answers.
        answer = await page.goto(f"{live_server}/?handle=two%20words&first_contact=maybe")
        assert answer.status == 200
        said = await page.locator("p.error[role=alert]").all_inner_texts()
        assert said == ["A handle is one word, such as @ana_lopez, without spaces, quotes or < >. The handle "
                        "filter was left out.", "First contact is yes or no. The first contact filter was left out."]
        assert await page.input_value("#search-handle") == "two words"  # left to correct
        assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    finally:
        await context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_two_reviewers_the_loser_sends_a_follow_up(browser, live_server, factory, db, javascript) -> None:
    kit = await factory.brand()
    turn_id, person_id, draft_id = await waiting_turn(db, kit.id, handle="@ana", text="@acme late",
                                                      draft="Sorry Ana!", minutes_ago=30)
    ctx_a = await browser.new_context(java_script_enabled=javascript, viewport=DESK)
    reviewer = await ctx_a.new_page()
    reviewer.set_default_timeout(10_000)
    await sign_in(reviewer, live_server, kit.reviewer_email, kit.password)
    ctx_b, admin = await opened(browser, live_server, kit.admin_email, kit.password, DESK)
    try:
        await reviewer.fill(f"#text-{turn_id}", "Sorry Ana, and a voucher is on its way.")
        await admin.keyboard.press("a")  # the admin approves first

        async def admin_won() -> bool:
            return await scalar(db, select(Reply.text).where(Reply.turn_id == turn_id)) is not None
        assert await until(admin_won)
        if javascript:
            await reviewer.keyboard.press("Control+Enter")
            await reviewer.locator("#toast.error").wait_for()
            await reviewer.keyboard.press("s")
            await reviewer.wait_for_selector("#person .lost")
            await reviewer.keyboard.press("f")
        else:
            await reviewer.click("#person .actions button.primary")
            await reviewer.wait_for_selector("#person .lost")
            assert "approved a reply" in await reviewer.inner_text("p.notice")
            await reviewer.click("#person [data-follow-up-send]")
        await reviewer.wait_for_url(lambda url: url.endswith("notice=follow_up"))
        assert "follow-up" in await reviewer.inner_text("p.notice")
        new_id = int(await reviewer.get_attribute("#person", "data-turn"))
        assert new_id != turn_id
        assert "A follow-up:" in await reviewer.inner_text("#person")
        turn = await one(db, select(Turn.__table__).where(Turn.id == new_id))
        draft = await one(db, select(Draft.__table__).where(Draft.id == turn.current_draft_id))
        assert (turn.person_id, turn.status, draft.source) == (person_id, "pending_review", "human")
        assert draft.text == "Sorry Ana, and a voucher is on its way."
        assert await reviewer.input_value(f"#text-{new_id}") == draft.text

        # A human approves the follow-up like any reply; then it is in the outbox.
        if javascript:
            await reviewer.keyboard.press("a")
        else:
            await reviewer.click("#person .actions button.primary")

        async def follow_up_approved() -> bool:
            return await scalar(db, select(Reply.text).where(Reply.turn_id == new_id)) == draft.text
        assert await until(follow_up_approved)
    finally:
        await ctx_a.close()
        await ctx_b.close()
    del draft_id
