"""Reviewers' flows in headless Chromium: keyboard work, edits, decisions, the stale draft, escaping, CSRF,
roles and an accessibility scan."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from assistant.db.turns import Decision, Turn
from tests.browser.conftest import sign_in
from tests.browser.seed import ingest_mention, store_draft, waiting_turn

pytestmark = pytest.mark.browser


async def statuses(db: Any) -> dict[int, str]:
    async with db.read() as session:
        return dict((await session.execute(select(Turn.id, Turn.status))).all())


async def test_sign_in_and_work_three_turns_by_keyboard_alone(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late order", draft="Sorry Ana!", minutes_ago=30)
    t2, _, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme broken mug", draft="Oh no, Bo.", minutes_ago=20)
    t3, _, _ = await waiting_turn(db, kit.id, handle="@cy", text="@acme hello", draft="Hi Cy.", minutes_ago=10)
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    assert await page.locator("#waiting-count").inner_text() == "3"

    # The first in fair order has focus; j/k move it.
    assert await page.get_attribute(f"#turn-{t1}", "class") == "turn focus"
    await page.keyboard.press("j")
    assert "focus" in await page.get_attribute(f"#turn-{t2}", "class")
    await page.keyboard.press("k")
    assert "focus" in await page.get_attribute(f"#turn-{t1}", "class")
    # ? opens the key help as a dialog, Escape closes it.
    await page.keyboard.press("?")
    assert await page.locator("#keys-help").is_visible()
    await page.keyboard.press("Escape")
    assert not await page.locator("#keys-help").is_visible()

    # a: approve the focused turn (Ana). The page reloads; Bo is first now.
    await page.keyboard.press("a")
    await page.wait_for_url(f"{live_server}/?notice=approved")
    # r: reject Bo, typing the reason, Enter.
    await page.keyboard.press("r")
    await page.keyboard.type("duplicate of a support ticket")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{live_server}/?notice=rejected")
    # e: edit Cy's draft, Escape, a: approve the edit.
    await page.keyboard.press("e")
    await page.keyboard.press("End")
    await page.keyboard.type(" Welcome!")
    await page.keyboard.press("Escape")
    await page.keyboard.press("a")
    await page.wait_for_url(f"{live_server}/?notice=approved")
    assert await page.locator("article.turn").count() == 0

    assert (await statuses(db)) == {t1: "approved", t2: "rejected", t3: "approved"}
    async with db.read() as session:
        decisions = {d.turn_id: d for d in (await session.execute(select(Decision))).scalars()}
    assert decisions[t2].reason == "duplicate of a support ticket"
    assert decisions[t3].final_text == "Hi Cy. Welcome!"


async def test_edit_with_a_live_counter_and_approve(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    counter = page.locator(f"#count-{t1}")
    assert await counter.inner_text() == "10"
    await page.fill(f"#text-{t1}", "Sorry Ana, it ships today 🙂")
    assert await counter.inner_text() == str(len("Sorry Ana, it ships today ") + 2)  # an emoji weighs 2 on X
    await page.click(f"#turn-{t1} form.approve button")
    await page.wait_for_url(f"{live_server}/?notice=approved")
    async with db.read() as session:
        decision = await session.scalar(select(Decision).where(Decision.turn_id == t1))
    assert decision.final_text == "Sorry Ana, it ships today 🙂" and decision.diff


async def test_reject_needs_a_reason(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme spam spam", draft="Hi!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.fill(f"#reject-{t1}", "spam account")
    await page.click(f"#turn-{t1} form[data-action=reject] button")
    await page.wait_for_url(f"{live_server}/?notice=rejected")
    assert (await statuses(db))[t1] == "rejected"


async def test_regenerate_with_guidance_sends_the_turn_back_to_drafting(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.keyboard.press("g")
    await page.keyboard.type("mention the tracking link")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{live_server}/?notice=regenerating")
    assert (await statuses(db))[t1] == "drafting"
    assert await page.locator(f"#turn-{t1}").count() == 0
    async with db.read() as session:
        decision = await session.scalar(select(Decision).where(Decision.turn_id == t1))
    assert decision.action == "regenerate" and decision.reason == "mention the tracking link"


async def test_a_draft_that_went_stale_while_reading_shows_the_new_one(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme my order is late", draft="Sorry Ana!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    # While the reviewer reads, Ana writes again and a new draft is written for both mentions.
    joined = await ingest_mention(db, kit.id, handle="@ana", text="@acme and the box was wet")
    assert joined.turn_id == t1
    new_draft = await store_draft(db, t1, "Sorry Ana, for the delay and the wet box.")
    await page.click(f"#turn-{t1} form.approve button")
    await page.wait_for_load_state()
    assert "The person wrote again; here is the new draft." in await page.inner_text("main")
    assert await page.input_value(f"#turn-{t1} input[name=draft_id]") == str(new_draft)
    assert await page.input_value(f"#text-{t1}") == "Sorry Ana, for the delay and the wet box."
    assert "and the box was wet" in await page.inner_text(f"#turn-{t1}")
    assert (await statuses(db))[t1] == "pending_review"
    await page.click(f"#turn-{t1} form.approve button")
    await page.wait_for_url(f"{live_server}/?notice=approved")


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
    await page.evaluate(f"document.querySelector('#turn-{t1} form.approve input[name=_csrf_token]').remove()")
    async with page.expect_navigation():
        await page.click(f"#turn-{t1} form.approve button")
    assert "without a valid security token" in await page.inner_text("main")
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
