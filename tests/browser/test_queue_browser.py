"""Reviewers' flows in headless Chromium: keyboard work, edits, decisions, the stale draft, escaping, CSRF,
roles and an accessibility scan."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from assistant.db.webhooks import Webhook, WebhookDelivery
from assistant.db.outbox import Reply
from assistant.db.turns import Decision, Turn
from tests.browser.conftest import sign_in, until
from tests.browser.seed import ingest_mention, store_draft, waiting_turn
from tests.support.db import execute, first_row, rows, scalar

pytestmark = pytest.mark.browser


async def statuses(db: Any) -> dict[int, str]:
    return dict(await rows(db, select(Turn.id, Turn.status)))


async def test_sign_in_and_work_three_turns_by_keyboard_alone(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late order", draft="Sorry Ana!", minutes_ago=30)
    t2, _, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme broken mug", draft="Oh no, Bo.", minutes_ago=20)
    t3, _, _ = await waiting_turn(db, kit.id, handle="@cy", text="@acme hello", draft="Hi Cy.", minutes_ago=10)
    await page.goto(f"{live_server}/login")
    assert await page.evaluate("document.activeElement.id") == "email"  # the sign-in box takes focus
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    assert await page.locator("#waiting-count").inner_text() == "3"

    # The first in fair order is in focus; j/k move it without a reload.
    assert await page.get_attribute("#person", "data-turn") == str(t1)
    await page.keyboard.press("j")
    await page.wait_for_selector(f'#person[data-turn="{t2}"]')
    assert await page.get_attribute(f"#turn-{t2} a", "aria-current") == "true"
    await page.keyboard.press("k")
    await page.wait_for_selector(f'#person[data-turn="{t1}"]')
    # ? opens the key help as a dialog, Escape closes it.
    await page.keyboard.press("?")
    assert await page.locator("#keys-help").is_visible()
    await page.keyboard.press("Escape")
    assert not await page.locator("#keys-help").is_visible()

    # a: approve Ana (one key); Bo is shown at once, the approval is sent after the undo window.
    await page.keyboard.press("a")
    await page.wait_for_selector(f'#person[data-turn="{t2}"]')
    assert await page.locator(f"#turn-{t1}").count() == 0
    # r: reject Bo, typing the reason, Enter.
    await page.keyboard.press("r")
    await page.keyboard.type("duplicate of a support ticket")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(f'#person[data-turn="{t3}"]')
    # e puts the cursor at the end of Cy's draft; Ctrl+Enter approves from the box.
    await page.keyboard.press("e")
    await page.keyboard.type(" Welcome!")
    await page.keyboard.press("Control+Enter")
    await page.wait_for_selector("#waiting-list .empty")
    assert await page.locator("#waiting-count").inner_text() == "0"

    async def all_decided() -> bool:
        return (await statuses(db)) == {t1: "approved", t2: "rejected", t3: "approved"}
    assert await until(all_decided)
    decisions = {d.turn_id: d for d in await rows(db, select(Decision))}
    assert decisions[t2].reason == "duplicate of a support ticket"
    assert decisions[t3].final_text == "Hi Cy. Welcome!"
    assert decisions[t1].final_text == "Sorry Ana!"


async def test_undo_within_the_window_sends_nothing(page, live_server, factory, db) -> None:
    """The approval is held in the page: undone in time, the server never hears of it (no reply in the outbox,
    no reply.approved delivery); not undone, it arrives after the window."""
    kit = await factory.brand()
    await execute(db, insert(Webhook).values(brand_id=kit.id, url="http://127.0.0.1:9/hook", events=["reply.approved"],
                                             secret="s" * 32))
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!", minutes_ago=30)
    t2, _, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme broken", draft="Oh no, Bo.", minutes_ago=20)
    await sign_in(page, live_server, kit.reviewer_email, kit.password)

    await page.keyboard.press("a")
    await page.wait_for_selector(f'#person[data-turn="{t2}"]')
    await page.keyboard.press("u")
    await page.wait_for_selector(f'#person[data-turn="{t1}"]')
    assert "Undone" in await page.inner_text("#toast")
    await page.wait_for_timeout(2500)  # past the 1.5 s window of the test settings

    assert await scalar(db, select(Reply.id).where(Reply.turn_id == t1)) is None
    assert await scalar(db, select(WebhookDelivery.id)) is None
    assert (await statuses(db))[t1] == "pending_review"
    assert await page.locator(f"#turn-{t1}").count() == 1 and await page.inner_text("#waiting-count") == "2"

    await page.keyboard.press("a")
    await page.wait_for_selector(f'#person[data-turn="{t2}"]')
    await page.wait_for_timeout(500)
    assert (await statuses(db))[t1] == "pending_review"  # still inside the window
    assert await until(lambda: _status_is(db, t1, "approved"))
    assert await scalar(db, select(WebhookDelivery.event_type)) == "reply.approved"


async def test_edit_with_a_live_counter_and_approve(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    counter = page.locator(f"#count-{t1}")
    assert await counter.inner_text() == "10"
    await page.fill(f"#text-{t1}", "Sorry Ana, it ships today 🙂")
    assert await counter.inner_text() == str(len("Sorry Ana, it ships today ") + 2)  # an emoji weighs 2 on X
    await page.click("#person .actions button.primary")

    async def decided() -> Any:
        return await first_row(db, select(Decision).where(Decision.turn_id == t1))
    decision = await until(decided)
    assert decision.final_text == "Sorry Ana, it ships today 🙂" and decision.diff


async def test_reject_needs_a_reason(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme spam spam", draft="Hi!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.click("#person details.reject summary")
    await page.click("#person form[data-action=reject] button")
    assert await page.evaluate(f"document.getElementById('reject-{t1}').validity.valueMissing")
    await page.fill(f"#reject-{t1}", "spam account")
    await page.click("#person form[data-action=reject] button")
    await page.wait_for_selector("#waiting-list .empty")
    assert (await statuses(db))[t1] == "rejected"


async def test_regenerate_with_guidance_sends_the_turn_back_to_drafting(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.keyboard.press("g")
    await page.keyboard.type("mention the tracking link")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#waiting-list .empty")
    assert (await statuses(db))[t1] == "drafting"
    assert await page.locator(f"#turn-{t1}").count() == 0
    decision = await first_row(db, select(Decision).where(Decision.turn_id == t1))
    assert decision.action == "regenerate" and decision.reason == "mention the tracking link"


async def test_a_draft_that_went_stale_while_reading_shows_the_new_one(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme my order is late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    # While the reviewer reads, Ana writes again and a new draft is written for both mentions.
    joined = await ingest_mention(db, kit.id, handle="@ana", text="@acme and the box was wet")
    assert joined.turn_id == t1
    new_draft = await store_draft(db, t1, "Sorry Ana, for the delay and the wet box.")
    await page.keyboard.press("a")
    toast = page.locator("#toast.error")
    await toast.wait_for()
    assert "The person wrote again; here is the new draft." in await toast.inner_text()
    await page.click("#toast button")
    await page.wait_for_selector(f'#person[data-turn="{t1}"] input[name=draft_id][value="{new_draft}"]', state="attached")
    assert await page.input_value(f"#text-{t1}") == "Sorry Ana, for the delay and the wet box."
    assert "and the box was wet" in await page.inner_text("#person")
    assert (await statuses(db))[t1] == "pending_review"
    await page.keyboard.press("a")
    assert await until(lambda: _status_is(db, t1, "approved"))


async def _status_is(db: Any, turn_id: int, status: str) -> bool:
    return (await statuses(db)).get(turn_id) == status


async def test_without_javascript_every_action_is_a_form(browser, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!", minutes_ago=30)
    t2, _, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme broken", draft="Oh no, Bo.", minutes_ago=20)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        await sign_in(page, live_server, kit.reviewer_email, kit.password)
        await page.click(f"#turn-{t2} a")
        await page.wait_for_url(f"{live_server}/?focus={t2}#person")
        assert await page.get_attribute("#person", "data-turn") == str(t2)
        await page.click("#person .actions button.primary")
        await page.wait_for_url(f"{live_server}/?notice=approved")
        assert "Approved" in await page.inner_text("p.notice")
        await page.click("#person details.reject summary")
        await page.fill(f"#reject-{t1}", "spam")
        await page.click("#person form[data-action=reject] button")
        await page.wait_for_url(f"{live_server}/?notice=rejected")
        assert await statuses(db) == {t1: "rejected", t2: "approved"}
    finally:
        await context.close()


async def test_a_mention_with_markup_is_shown_as_text_and_runs_nothing(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    evil = "<img src=x onerror=alert(1)>"
    _, person_id, _ = await waiting_turn(db, kit.id, handle="@mallory", text=evil, draft="Hello <script>alert(2)</script>",
                       author={"handle": "@mallory", "display_name": "<b onmouseover=alert(3)>M</b>"})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    assert evil in await page.inner_text("ol.mentions")
    assert await page.locator("main img").count() == 0
    await page.goto(f"{live_server}/people/{person_id}")
    await page.wait_for_timeout(300)
    assert dialogs == []


async def test_a_form_posted_without_its_csrf_token_is_refused(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.evaluate("document.querySelector('#person form.approve input[name=_csrf_token]').remove()")
    await page.keyboard.press("a")
    await page.locator("#toast.error").wait_for()
    assert "without a valid security token" in await page.inner_text("#toast")
    answer = await page.request.post(f"{live_server}/turns/{t1}/reject", form={"reason": "x"})
    assert answer.status == 403
    assert (await statuses(db))[t1] == "pending_review"


async def test_a_reviewer_cannot_reach_admin_pages(page, live_server, factory) -> None:
    kit = await factory.brand()
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    assert await page.locator("nav a[href='/admin/users']").count() == 0
    for path in ("/admin/users", "/admin/keys", "/admin/policy"):
        answer = await page.goto(f"{live_server}{path}")
        assert answer.status == 403, path


async def test_no_serious_or_critical_accessibility_violations(page, live_server, factory, db) -> None:
    from axe_playwright_python.async_playwright import Axe

    kit = await factory.brand()
    turn_id, person_id, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="We guarantee it!",
                                               findings=[{"rule": "banned_pattern", "severity": "block",
                                                          "message": "no promises", "start": 3, "end": 12}])
    axe = Axe()
    await sign_in(page, live_server, kit.admin_email, kit.password)
    found = {}
    for path in ("/", f"/people/{person_id}", "/audit", "/fairness", "/admin/users", "/admin/keys", "/admin/policy",
                 "/login"):
        await page.goto(f"{live_server}{path}")
        results = await axe.run(page)
        found[path] = [(v["id"], v["impact"]) for v in results.response["violations"]
                       if v["impact"] in ("serious", "critical")]
    assert all(not v for v in found.values()), found
