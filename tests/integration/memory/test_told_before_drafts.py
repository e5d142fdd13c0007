"""A draft that re-asks what the person told us, or contradicts our earlier reply, carries a finding that links
the earlier message; the model judges too when the brand turns it on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Row, select

from assistant.db.people import Interaction
from assistant.db.turns import Draft, Turn
from assistant.policy.service import set_brand_policy
from tests.integration.test_drafting import add_history
from tests.integration.test_web import sign_in
from tests.support.db import scalar
from tests.support.fake_llm import FakeLLM, Response
from tests.support.review_helpers import post_mention
from tests.support.worker import drain_with


@pytest.fixture
def settings(settings, fake_llm: FakeLLM):
    return settings.replace(llm_base_url=fake_llm.base_url, llm_model="test", llm_timeout_seconds=2.0)


async def current_draft(db, turn_id: int) -> Row[Any]:
    def look(conn: Connection) -> Row[Any]:
        draft_id = conn.scalar(select(Turn.current_draft_id).where(Turn.id == turn_id))
        return conn.execute(select(Draft).where(Draft.id == draft_id)).one()
    return await db.run_read(look)


async def test_a_draft_asking_again_for_the_order_number_links_where_they_gave_it(client, db, factory, settings,
                                                                                  fake_llm):
    kit = await factory.brand()
    first = await post_mention(client, kit, handle="@ana", text="@acme order #A-44718 never came")
    second = await post_mention(client, kit, handle="@ana", text="@acme hello??", conversation_id="c2")
    fake_llm.default = Response(text="Hi Ana, sorry! Could you send us your order number?")

    await drain_with(settings)

    draft = await current_draft(db, second["turn_id"])
    [finding] = [f for f in draft.findings if f["rule"].startswith("told_before")]
    told = await scalar(db, select(Interaction.id).where(Interaction.turn_id == first["turn_id"]))
    assert finding["rule"] == "told_before.reask" and finding["earlier"]["interaction_id"] == told
    assert draft.text[finding["start"]:finding["end"]].lower().endswith("order number")

    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get(f"/?focus={second['turn_id']}")).text
    assert f'href="/people/{second["person_id"]}#message-{told}"' in html
    person = (await client.get(f"/people/{second['person_id']}")).text
    assert f'id="message-{told}"' in person


async def test_the_model_judges_contradictions_only_when_the_brand_turns_it_on(client, db, factory, settings,
                                                                                fake_llm):
    kit = await factory.brand()
    first = await post_mention(client, kit, handle="@ana", text="@acme where is it?")
    await add_history(db, kit, first["person_id"], ["It ships on Friday, Ana."], direction="outbound")
    fake_llm.default = Response(text=lambda body: '{"contradicts": 1, "why": "we said Friday"}'
                                if "You check one draft" in body["messages"][0]["content"] else "It ships Monday.")
    await drain_with(settings)
    assert not [f for f in (await current_draft(db, first["turn_id"])).findings if f["rule"] == "told_before.model"]
    assert not [r for r in fake_llm.requests if "You check one draft" in r.json["messages"][0]["content"]]

    await db.run_write(set_brand_policy, kit.id, "[service]\nmodel_judges_told_before = true\n")
    await client.post(f"/api/v1/turns/{first['turn_id']}/regenerate", json={}, headers=kit.reviewer)
    await drain_with(settings)
    [finding] = [f for f in (await current_draft(db, first["turn_id"])).findings if f["rule"] == "told_before.model"]
    assert "we said Friday" in finding["message"] and finding["earlier"]["text"] == "It ships on Friday, Ana."
