"""Promises (issue 12, part 1): found at approval, listed, settled, and followed up when they fall due."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, insert, select, update

from assistant.db import Database
from assistant.db.jobs import Job
from assistant.db.outbox import Reply
from assistant.db.people import Person
from assistant.db.turns import Draft, Turn
from assistant.db.webhooks import WebhookDelivery
from assistant.db.base import utcnow
from assistant.promises import service
from assistant.webhooks import service as webhooks
from tests.support.db import execute, scalar, scalars
from tests.support.memory_helpers import PROMISING, approved_reply, make_due, promises_of
from tests.support.review_helpers import post_mention
from tests.support.worker import drain


async def test_an_approved_reply_that_promises_is_remembered_with_its_words_and_due_time(client, db, factory):
    kit = await factory.brand()
    made = await approved_reply(client, db, kit)

    [promise] = await promises_of(db)
    assert promise.kind == "check" and promise.source == "pattern" and promise.status == "open"
    assert promise.text == "I'll check with the warehouse and get back to you tomorrow."
    assert promise.reply_id == made["reply_id"] and promise.turn_id == made["turn_id"]
    approved_at = await scalar(db, select(Reply.approved_at).where(Reply.id == made["reply_id"]))
    assert promise.due_at == approved_at + dt.timedelta(hours=24)

    response = await client.get(f"/api/v1/people/{promise.person_id}/promises", headers=kit.read)
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["id"] == promise.id and item["status"] == "open" and item["reply_id"] == made["reply_id"]
    assert item["kind"] == "check" and item["settled_at"] is None and item["reason"] is None


async def test_a_reply_that_promises_nothing_stores_no_promise(client, db, factory):
    kit = await factory.brand()
    await approved_reply(client, db, kit, text="Hi Ana, it shipped this morning: tracking is in your inbox.")
    assert await promises_of(db) == []


async def test_a_brand_policy_decides_the_kinds_and_due_times(client, db, factory):
    from assistant.policy.service import set_brand_policy
    kit = await factory.brand()
    await db.run_write(set_brand_policy, kit.id, '[promises.callback]\npatterns = [\'(?i)\\bcall you back\\b\']\n'
                                                'due_after = "2h"\n')
    await approved_reply(client, db, kit, text="Hi Ana, we'll call you back this afternoon. I'll check too.")
    [promise] = await promises_of(db)
    assert promise.kind == "callback" and promise.due_at - promise.created_at == dt.timedelta(hours=2)


async def test_person_promises_of_another_brand_are_404_and_need_the_read_scope(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    await approved_reply(client, db, kit)
    [promise] = await promises_of(db)
    assert (await client.get(f"/api/v1/people/{promise.person_id}/promises", headers=other.read)).status_code == 404
    assert (await client.get(f"/api/v1/people/{promise.person_id}/promises", headers=kit.ingest)).status_code == 403
    assert (await client.get(f"/api/v1/people/{promise.person_id}/promises")).status_code == 401
    assert (await client.get("/api/v1/promises?status=open", headers=other.read)).json()["items"] == []


async def test_brand_promises_by_status_oldest_due_first_in_pages(client, db, factory):
    kit = await factory.brand()
    for handle in ("@ana", "@bo", "@cy"):
        await approved_reply(client, db, kit, handle=handle)
    ids = [p.id for p in await promises_of(db)]
    await make_due(db, ids[2], dt.timedelta(hours=3))
    await make_due(db, ids[0], dt.timedelta(hours=2))

    first = (await client.get("/api/v1/promises?status=open&limit=2", headers=kit.read)).json()
    assert [p["id"] for p in first["items"]] == [ids[2], ids[0]] and first["next_cursor"]
    second = (await client.get(f"/api/v1/promises?status=open&limit=2&cursor={first['next_cursor']}",
                                headers=kit.read)).json()
    assert [p["id"] for p in second["items"]] == [ids[1]] and second["next_cursor"] is None
    assert (await client.get("/api/v1/promises", headers=kit.read)).json()["items"] == []  # default: due
    bad = await client.get("/api/v1/promises?status=late", headers=kit.read)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    assert (await client.get("/api/v1/promises?cursor=nonsense", headers=kit.read)).status_code == 422


async def test_a_reviewer_settles_a_promise_once_with_a_webhook(client, db, factory, settings):
    kit = await factory.brand()
    await webhooks.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["promise.settled"])
    await approved_reply(client, db, kit)
    [promise] = await promises_of(db)

    no_reason = await client.post(f"/api/v1/promises/{promise.id}/settle", json={"outcome": "dropped"},
                                  headers=kit.reviewer)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    bad = await client.post(f"/api/v1/promises/{promise.id}/settle", json={"outcome": "maybe"}, headers=kit.reviewer)
    assert bad.status_code in (400, 422)
    assert (await client.post(f"/api/v1/promises/{promise.id}/settle", json={"outcome": "kept"},
                              headers=kit.read)).status_code == 403
    other = await factory.brand()
    assert (await client.post(f"/api/v1/promises/{promise.id}/settle", json={"outcome": "kept"},
                              headers=other.reviewer)).status_code == 404
    assert (await promises_of(db))[0].status == "open"  # nothing stored by the refused requests

    ok = await client.post(f"/api/v1/promises/{promise.id}/settle", json={"outcome": "kept", "reason": "refund sent"},
                           headers=kit.reviewer)
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "kept" and ok.json()["reason"] == "refund sent" and ok.json()["settled_at"]
    again = await client.post(f"/api/v1/promises/{promise.id}/settle", json={"outcome": "dropped", "reason": "x"},
                              headers=kit.reviewer)
    assert again.status_code == 409
    events = await scalars(db, select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "promise.settled"))
    assert [e["data"]["outcome"] for e in events] == ["kept"] and events[0]["data"]["promise_id"] == promise.id


async def test_a_due_promise_opens_one_follow_up_turn_drafted_in_the_queue(client, db, factory, state, settings):
    kit = await factory.brand()
    await webhooks.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["promise.due"])
    made = await approved_reply(client, db, kit)
    [promise] = await promises_of(db)
    assert await service.run_sweep(db) == []  # not due yet
    await make_due(db, promise.id)

    [turn_id] = await service.run_sweep(db)
    assert await service.run_sweep(db) == []  # once only
    await drain(state)

    def look(conn):
        turn = conn.execute(select(Turn).where(Turn.id == turn_id)).one()
        return (turn, conn.execute(select(Draft).where(Draft.id == turn.current_draft_id)).one(),
                conn.scalars(select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "promise.due")).all())
    turn, draft, due = await db.run_read(look)
    assert turn.status == "pending_review" and turn.person_id == promise.person_id
    assert draft.source == "fallback" and "following up on what we said" in draft.text
    [refreshed] = await promises_of(db)
    assert refreshed.status == "due" and refreshed.followup_turn_id == turn_id
    assert turn.waiting_since == refreshed.due_at  # in the queue where the promise fell due, in fair order
    assert [e["data"]["turn_id"] for e in due] == [turn_id]

    queue = (await client.get("/api/v1/turns?status=pending_review", headers=kit.reviewer)).json()["items"]
    assert [t["id"] for t in queue] == [turn_id]
    approve = await client.post(f"/api/v1/turns/{turn_id}/approve", headers=kit.reviewer,
                                json={"draft_id": draft.id, "text": "Hi Ana, the warehouse found it: it ships today."})
    assert approve.status_code == 200, approve.text
    reply, first = await db.run_read(lambda conn: (
        conn.execute(select(Reply).where(Reply.id == approve.json()["reply_id"])).one(),
        conn.execute(select(Reply).where(Reply.id == made["reply_id"])).one()))
    assert reply.in_reply_to == first.in_reply_to  # the follow-up continues the thread we left
    [kept] = await promises_of(db)
    assert kept.status == "kept" and kept.reason == f"followed up in reply {reply.id}"


async def test_no_follow_up_for_a_person_who_opted_out(client, db, factory):
    kit = await factory.brand()
    await approved_reply(client, db, kit)
    [promise] = await promises_of(db)
    await execute(db, update(Person).where(Person.id == promise.person_id).values(do_not_reply=True))
    await make_due(db, promise.id)

    assert await service.run_sweep(db) == []
    turns = await _turn_count(db)
    [dropped] = await promises_of(db)
    assert turns == 1 and dropped.status == "dropped" and "asked not to be replied to" in dropped.reason


async def test_the_person_writing_again_settles_it_and_a_due_promise_joins_their_open_turn(client, db, factory):
    kit = await factory.brand()
    await approved_reply(client, db, kit)
    await approved_reply(client, db, kit, handle="@bo")
    ana, bo = await promises_of(db)
    await post_mention(client, kit, handle="@bo", text="@acme an old tweet, imported late",
                       created_at=(utcnow() - dt.timedelta(days=30)).isoformat())  # written before: does not count
    await post_mention(client, kit, handle="@ana", text="@acme any news?", created_at=utcnow().isoformat())
    assert await service.run_sweep(db) == []
    ana = (await promises_of(db, id=ana.id))[0]
    assert ana.status == "kept" and "wrote again" in ana.reason

    assert (await promises_of(db, id=bo.id))[0].status == "open"
    await make_due(db, bo.id)
    open_id = await db.run_write(lambda conn: conn.execute(insert(Turn).values(  # Bo has a turn open already
        brand_id=kit.id, person_id=bo.person_id, platform="x", status="pending_review",
        waiting_since=utcnow() - dt.timedelta(days=2), version=0, created_at=utcnow(),
        updated_at=utcnow())).inserted_primary_key[0])
    assert await service.run_sweep(db) == [open_id]
    assert (await promises_of(db, id=bo.id))[0].followup_turn_id == open_id


@pytest.mark.postgres  # concurrent sweeping workers need PostgreSQL (SQLite serializes writers in one process)
async def test_several_workers_sweeping_at_once_open_exactly_one_turn(client, db, factory, settings):
    kit = await factory.brand()
    for handle in ("@ana", "@bo", "@cy"):
        await approved_reply(client, db, kit, handle=handle)
    for promise in await promises_of(db):
        await make_due(db, promise.id)
    before = await _turn_count(db)

    databases = [Database(settings.database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(service.run_sweep(d) for d in databases for _ in range(3)))
    finally:
        for d in databases:
            await d.dispose()

    opened = [turn for result in results for turn in result]
    assert len(opened) == 3 == len(set(opened))
    assert await _turn_count(db) == before + 3
    jobs = await scalar(db, select(func.count()).select_from(Job).where(
        Job.kind == "draft_turn", Job.subject_id.in_(opened)))
    assert jobs == 3


async def _turn_count(db) -> int:
    return await scalar(db, select(func.count()).select_from(Turn))
