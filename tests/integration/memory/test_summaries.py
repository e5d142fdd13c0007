"""Long histories remembered (issue 12, part 3): a summary of what no longer fits the prompt, written by the
model or as a labelled extract, stored with what it covers, put in the prompt, editable, refreshed, and
never carrying another person's words."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Row, insert, select

from assistant.db.memory import RelationshipSummary
from assistant.db.people import Interaction
from tests.integration.test_drafting import add_history, user_prompt
from tests.support.db import execute, first_row, scalars
from tests.support.fake_llm import FakeLLM, Response
from tests.support.review_helpers import post_mention
from tests.support.worker import drain_with

BUDGET = 120  # three 100-byte messages fit (25 tokens and 12 of framing each)


def old_texts(mark: str, n: int = 20) -> list[str]:
    return [f"{mark} old {k:02d}: is my order {mark}-{k} here yet?".ljust(100, ".") for k in range(n)]


async def drain(settings, **changes) -> None:
    await drain_with(settings.replace(history_token_budget=BUDGET, **changes))


async def summary_row(db, person_id: int) -> Row[Any] | None:
    return await first_row(db, select(RelationshipSummary).where(RelationshipSummary.person_id == person_id))


async def test_without_a_model_a_labelled_extract_of_only_their_own_words(client, db, factory, settings):
    kit = await factory.brand()
    ana = await post_mention(client, kit, handle="@ana", text="@acme any news?")
    bo = await post_mention(client, kit, handle="@bo", text="@acme hello?")
    await add_history(db, kit, ana["person_id"], old_texts("ANA"))
    await add_history(db, kit, bo["person_id"], old_texts("BOB"))

    await drain(settings)

    row = await summary_row(db, ana["person_id"])
    assert row.source == "extract" and row.model is None
    assert row.text.startswith("Plain extract (no model)") and "ANA old 16: is my order ANA-16 here yet?" in row.text
    assert "BOB" not in row.text and "ANA old 17" not in row.text  # 17..19 still fit the prompt
    older = set(await scalars(db, select(Interaction.id).where(
        Interaction.person_id == ana["person_id"], Interaction.external_id.like("h-%"))))
    assert len(row.covers) == 17 and set(row.covers) <= older

    response = await client.get(f"/api/v1/people/{ana['person_id']}/summary", headers=kit.read)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "extract" and body["text"] == row.text and body["covers_until"] and body["updated_at"]
    bob = await summary_row(db, bo["person_id"])
    assert "ANA" not in bob.text and "BOB old 16" in bob.text


async def test_the_model_summarises_only_that_person_and_the_draft_reads_it(client, db, factory, settings, fake_llm):
    kit = await factory.brand()
    ana = await post_mention(client, kit, handle="@ana", text="@acme any news?")
    bo = await post_mention(client, kit, handle="@bo", text="@acme hello?")
    await add_history(db, kit, ana["person_id"], old_texts("ANA"))
    await add_history(db, kit, bo["person_id"], old_texts("BOB"))
    fake_llm.default = Response(text=lambda body: (
        "SUMMARY OF ANA: asks about orders." if "ANA old" in body["messages"][1]["content"]
        and "You keep" in body["messages"][0]["content"] else
        "SUMMARY OF BOB: asks about orders." if "You keep" in body["messages"][0]["content"] else "Hi there!"))

    await drain(settings, llm_base_url=fake_llm.base_url, llm_model="test")

    summaries = [r for r in fake_llm.requests if "You keep" in r.json["messages"][0]["content"]]
    assert len(summaries) == 2
    for request in summaries:
        content = user_prompt(request)
        assert ("ANA old" in content) != ("BOB old" in content)  # one person's words, never both
    row = await summary_row(db, ana["person_id"])
    assert (row.source, row.model, row.text) == ("model", "test", "SUMMARY OF ANA: asks about orders.")
    drafts = [r for r in fake_llm.requests if "You draft replies" in r.json["messages"][0]["content"]]
    ana_prompt = next(user_prompt(r) for r in drafts if "ANA old 19" in user_prompt(r))
    assert "SUMMARY OF ANA" in ana_prompt and "SUMMARY OF BOB" not in ana_prompt
    assert ana_prompt.index("SUMMARY OF ANA") < ana_prompt.index("ANA old 17") < ana_prompt.index("any news?")


async def test_a_summary_is_refreshed_when_enough_new_history_arrives(client, db, factory, settings):
    kit = await factory.brand()
    ana = await post_mention(client, kit, handle="@ana", text="@acme any news?")
    await add_history(db, kit, ana["person_id"], old_texts("ANA"))
    await drain(settings)
    first = await summary_row(db, ana["person_id"])

    await execute(db, *(  # a few newer messages: fewer than the refresh needs
        insert(Interaction).values(brand_id=kit.id, person_id=ana["person_id"], direction="inbound", platform="x",
                                   external_id=f"new-{k}", text=f"NEW {k} question?".ljust(100, "."),
                                   occurred_at=first.covers_until.replace(year=2025, month=6, day=1 + k),
                                   received_at=first.covers_until)
        for k in range(5)))
    await post_mention(client, kit, handle="@ana", text="@acme again?", conversation_id="c2")
    await client.post(f"/api/v1/turns/{ana['turn_id']}/reject", json={"reason": "x"}, headers=kit.reviewer)
    await drain(settings)
    assert (await summary_row(db, ana["person_id"])).covers == first.covers

    await execute(db, *(
        insert(Interaction).values(brand_id=kit.id, person_id=ana["person_id"], direction="inbound", platform="x",
                                   external_id=f"new-{k}", text=f"NEW {k} question?".ljust(100, "."),
                                   occurred_at=first.covers_until.replace(year=2025, month=7, day=1 + k),
                                   received_at=first.covers_until)
        for k in range(5, 15)))
    await post_mention(client, kit, handle="@ana", text="@acme and again?", conversation_id="c3")
    await drain(settings)
    refreshed = await summary_row(db, ana["person_id"])
    assert len(refreshed.covers) > len(first.covers) and refreshed.covers_until > first.covers_until


async def test_a_reviewer_edits_the_summary_and_bad_edits_store_nothing(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    ana = await post_mention(client, kit, handle="@ana")
    pid = ana["person_id"]
    missing = await client.get(f"/api/v1/people/{pid}/summary", headers=kit.read)
    assert missing.status_code == 404 and "still fits" in missing.json()["detail"]

    assert (await client.put(f"/api/v1/people/{pid}/summary", json={"text": "x"}, headers=kit.read)).status_code == 403
    assert (await client.put(f"/api/v1/people/{pid}/summary", json={"text": "x"},
                             headers=other.reviewer)).status_code == 404
    for bad in ({"text": "   "}, {"text": "x" * 2001}, {"text": "a\x00b"}, {}, {"text": "ok", "source": "model"}):
        response = await client.put(f"/api/v1/people/{pid}/summary", json=bad, headers=kit.reviewer)
        assert response.status_code in (400, 422), (bad, response.text)
    assert await summary_row(db, pid) is None

    ok = await client.put(f"/api/v1/people/{pid}/summary", json={"text": "Prefers e-mail. Order 4471 refunded."},
                          headers=kit.reviewer)
    assert ok.status_code == 200, ok.text
    assert ok.json()["source"] == "human" and ok.json()["text"] == "Prefers e-mail. Order 4471 refunded."
    assert (await client.get(f"/api/v1/people/{pid}/summary", headers=other.read)).status_code == 404
    assert (await client.get(f"/api/v1/people/{pid}/summary", headers=kit.read)).json()["source"] == "human"
