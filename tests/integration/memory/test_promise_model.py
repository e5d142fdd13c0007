"""With a model configured, an approved reply is also read by the model for promises the patterns missed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from assistant.db.jobs import Job

from tests.support.db import first_row
from tests.support.fake_llm import FakeLLM, Response
from tests.support.memory_helpers import approved_reply, promises_of
from tests.support.worker import drain


@pytest.fixture
def settings(settings, fake_llm: FakeLLM):
    return settings.replace(llm_base_url=fake_llm.base_url, llm_model="test", llm_timeout_seconds=2.0)


async def test_the_model_finds_a_promise_the_patterns_missed(client, db, factory, state, fake_llm):
    kit = await factory.brand()
    text = "Hi Ana, the courier owes us an answer; you will hear from me on Monday."
    fake_llm.enqueue(Response(text=json.dumps({"promises": [
        {"kind": "get_back", "words": "you will hear from me on Monday"},
        {"kind": "get_back", "words": "a refund today"}]})))
    made = await approved_reply(client, db, kit, text=text)
    assert await promises_of(db) == []  # the patterns found nothing

    await drain(state)

    [promise] = await promises_of(db)
    assert promise.source == "model" and promise.kind == "get_back" and promise.reply_id == made["reply_id"]
    assert promise.text == "you will hear from me on Monday"
    [request] = [r for r in fake_llm.requests if "promises" in r.json["messages"][0]["content"]]
    assert "<<<REPLY\n" + text in request.json["messages"][1]["content"]


async def test_what_the_patterns_found_is_not_stored_twice(client, db, factory, state, fake_llm):
    kit = await factory.brand()
    fake_llm.enqueue(Response(text='{"promises": [{"kind": "check", "words": "I\'ll check with the warehouse"}]}'))
    await approved_reply(client, db, kit)
    await drain(state)
    assert [(p.kind, p.source) for p in await promises_of(db)] == [("check", "pattern")]


async def test_a_model_that_stays_down_leaves_the_pattern_promises_alone(client, db, factory, state, fake_llm):
    kit = await factory.brand()
    fake_llm.default = Response(status=500)
    await approved_reply(client, db, kit)
    await drain(state)  # the job fails and waits for its retry
    assert [(p.kind, p.source) for p in await promises_of(db)] == [("check", "pattern")]
    job = await first_row(db, select(Job).where(Job.kind == "read_promises"))
    assert job.status == "queued" and "model unavailable" in job.last_error
