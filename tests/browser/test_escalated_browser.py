"""In Chromium: moving focus shows that person's history, an escalated turn is answered by a human from the
Escalated view by keyboard alone (the sign-off added when left out), and that view passes the accessibility
scan."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assistant.db.outbox import Reply
from assistant.db.turns import Turn
from tests.browser.conftest import sign_in, until
from tests.browser.seed import ingest_mention, waiting_turn
from tests.support import turn_states
from tests.support.db import scalar

pytestmark = pytest.mark.browser


async def test_moving_focus_loads_that_persons_history(page, live_server, factory, db) -> None:
    kit = await factory.brand()
    older = await ingest_mention(db, kit.id, handle="@bo", text="@acme an older message from Bo",
                                 created_at="2025-01-01T00:00:00Z")
    await turn_states.reach(db, older.turn_id, "rejected", kit.reviewer_id)
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!", minutes_ago=30)
    t2, _, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme broken", draft="Oh no, Bo.", minutes_ago=20)
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    assert "an older message from Bo" not in await page.inner_text("#person")

    await page.keyboard.press("j")

    await page.locator(f'#person[data-turn="{t2}"] ol.timeline').wait_for()
    assert "an older message from Bo" in await page.inner_text("#person section.conversation")
    assert "current" in await page.get_attribute(f"#turn-{t2}", "class")


async def test_an_escalated_turn_is_answered_by_a_human_by_keyboard(page, live_server, factory, db) -> None:
    from axe_playwright_python.async_playwright import Axe

    kit = await factory.brand()
    turn_id = (await ingest_mention(db, kit.id, handle="@carol", text="@acme my lawyer will call you")).turn_id
    await turn_states.escalate_by_rule(db, turn_id, "legal")
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    assert await page.inner_text("#escalated-count") == "1"
    await page.click("nav.views a[href='/?status=escalated']")
    await page.wait_for_url(f"{live_server}/?status=escalated")
    assert "legal" in await page.inner_text("#person .escalation")
    results = await Axe().run(page)
    assert [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")] == []

    await page.keyboard.press("e")
    await page.keyboard.type("Hi Carol, our legal team will write to you today.")
    await page.keyboard.press("Escape")
    await page.keyboard.press("a")
    await page.wait_for_selector("#waiting-list .empty")

    async def approved() -> bool:
        return await scalar(db, select(Turn.status).where(Turn.id == turn_id)) == "approved"
    assert await until(approved)
    assert await scalar(db, select(Reply.text).where(Reply.turn_id == turn_id)) == \
        "Hi Carol, our legal team will write to you today."
