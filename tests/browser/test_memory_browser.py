"""Relationship memory in headless Chromium: the promise badge and list (settled from the person page), the
left-behind page, the summary editor, and the edits page turning an edit into a rule."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from assistant.db.memory import Promise, RelationshipSummary
from assistant.db.tenancy import Brand
from assistant.db.turns import Turn
from assistant.review import service as review
from tests.browser.conftest import sign_in
from tests.browser.seed import waiting_turn
from tests.support.db import execute, one, scalar
from tests.support.review_helpers import store_draft

pytestmark = pytest.mark.browser


async def approve_as(db, kit, turn_id: int, draft_id: int, text: str | None = None) -> None:
    from assistant.auth.principal import Principal
    actor = Principal(kind="user", id=kit.admin_id, brand_id=kit.id, label=kit.admin_email, role="admin")
    await review.approve(db, actor, turn_id, draft_id=draft_id, text=text)


async def test_the_promise_badge_and_settling_a_promise_on_the_person_page(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    t1, person, d1 = await waiting_turn(db, kit.id, handle="@ana", text="@acme where is my refund?",
                                        draft="Hi Ana, I'll check with the team and get back to you.", minutes_ago=90)
    await approve_as(db, kit, t1, d1)
    await waiting_turn(db, kit.id, handle="@ana", text="@acme <b>still</b> waiting", draft="Hi again Ana.",
                       minutes_ago=5, conversation_id="c2")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)

    badge = page.locator("#waiting-list .promise-badge")
    assert await badge.inner_text() == "promise open"
    assert "get back to you" in (await badge.get_attribute("title"))
    await page.click("#person-name a")
    await page.wait_for_url(f"{live_server}/people/{person}")
    item = page.locator(".promise-list li.promise")
    assert "I'll check with the team and get back to you." in await item.inner_text()
    await page.fill(".promise-list input[name=reason]", "refund sent by e-mail")
    await page.click(".promise-list button[value=kept]")
    await page.wait_for_url(f"{live_server}/people/{person}?notice=promise#promises")
    assert "refund sent by e-mail" in await page.locator(".promise-list li.promise").inner_text()
    assert await scalar(db, select(Promise.status)) == "kept"


async def test_the_left_behind_page_and_the_queue_count(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    rejected, _, _ = await waiting_turn(db, kit.id, handle="@rej", text="@acme hello?", draft="Hi.", minutes_ago=30)
    await waiting_turn(db, kit.id, handle="@late", text="@acme anyone?", draft="Hi!", minutes_ago=60 * 6)
    await execute(db, update(Turn).where(Turn.id == rejected).values(status="rejected"))
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    assert await page.locator("#left-behind-count").inner_text() == "2 left behind"
    other, _, _ = await waiting_turn(db, kit.id, handle="@gone", text="@acme ping", draft="Hi.", minutes_ago=20)
    await execute(db, update(Turn).where(Turn.id == other).values(status="rejected"))
    await expect(page.locator("#left-behind-count")).to_have_text("3 left behind", timeout=20_000)  # no reload
    await page.click("#left-behind-count")
    await page.wait_for_url(f"{live_server}/left-behind")
    rows = page.locator("table.left-behind tbody tr")
    assert await rows.count() == 3
    assert "overdue" in await rows.nth(0).inner_text() and "rejected" in await rows.nth(1).inner_text()
    await page.click("nav[aria-label=Why] a:text-is(\"rejected\")")
    await page.wait_for_url(f"{live_server}/left-behind?why=rejected")
    assert await page.locator("table.left-behind tbody tr").count() == 2


async def test_the_summary_editor(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    _, person, _ = await waiting_turn(db, kit.id, handle="@reg", text="@acme hi", draft="Hi!")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.goto(f"{live_server}/people/{person}")
    assert "No summary yet" in await page.locator("#summary-source").inner_text()
    await page.fill("#summary-text", "Prefers e-mail. <script>alert(1)</script> Order 4471 refunded in May.")
    await page.click("#summary button[type=submit]")
    await page.wait_for_url(f"{live_server}/people/{person}?notice=summary#summary")
    assert "Written by our team" in await page.locator("#summary-source").inner_text()
    assert "<script>" in await page.locator("#summary-text").input_value()  # shown as text, never run
    row = await one(db, select(RelationshipSummary))
    assert row.source == "human" and row.text.startswith("Prefers e-mail.")


async def test_the_edits_page_turns_a_removed_phrase_into_a_rule(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    for n, handle in enumerate(("@a", "@b")):
        turn_id, _, draft_id = await waiting_turn(db, kit.id, handle=handle, text="@acme late",
                                                  draft="It ships today. Thank you for your patience.", minutes_ago=9 - n)
        await approve_as(db, kit, turn_id, draft_id, text="It ships today.")
    await sign_in(page, live_server, kit.admin_email, kit.password)
    await page.click("nav >> text=Edits")
    await page.wait_for_url(f"{live_server}/admin/edits")
    assert "2 approvals of drafts: 0 unchanged, 2 edited" in await page.locator("#edit-rates").inner_text()
    row = page.locator("tr.edit.removed", has_text="thank you for your patience.")
    assert "2" in await row.inner_text()
    await row.locator("button").click()
    await page.wait_for_url(f"{live_server}/admin/edits?notice=rule")
    source = await scalar(db, select(Brand.policy_toml).where(Brand.id == kit.id))
    assert 'phrase = "thank you for your patience."' in source
