"""The outbox API: claims under a lease, confirmation once, failure with and without retry, isolation.
Claim tokens and their fence (stalled clients, stale reports, renewal, races): ``test_outbox_fence.py``."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.audit import AuditEvent
from assistant.db.outbox import Reply
from assistant.db.people import Interaction, Person
from assistant.db.webhooks import WebhookDelivery
from assistant.outbox import service
from assistant.webhooks import service as webhooks
from tests.support.db import execute, one, scalar
from tests.support.outbox_helpers import approved_replies, claim, reply_row, turn_status

CLAIM = "/api/v1/replies/claim"


def posted(reply_id: int) -> str:
    return f"/api/v1/replies/{reply_id}/posted"


def failed(reply_id: int) -> str:
    return f"/api/v1/replies/{reply_id}/failed"


def renew(reply_id: int) -> str:
    return f"/api/v1/replies/{reply_id}/renew"


TOKEN = object()
"""In a parametrised body: the claim token the test's claim answered."""


async def test_list_shows_approved_replies_oldest_first_in_pages(client, db, factory):
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 5)
    seen, cursor = [], None
    while True:
        params = {"status": "approved", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/replies", params=params, headers=kit.outbox)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    first = (await client.get("/api/v1/replies", headers=kit.outbox)).json()["items"][0]
    assert first["status"] == "approved" and first["author_handle"] == "person0" and first["in_reply_to"]


async def test_claim_hands_out_oldest_first_with_a_lease(client, db, factory):
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 3)
    answer = await client.post(CLAIM, json={"limit": 2, "lease_seconds": 60}, headers=kit.outbox)
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [item["id"] for item in items] == ids[:2]
    assert set(items[0]) == {"id", "platform", "text", "in_reply_to", "author_handle", "lease_until",
                             "claim_token", "lease_expires_at"}
    lease_until = dt.datetime.fromisoformat(items[0]["lease_until"])
    assert 55 < (lease_until - dt.datetime.now(dt.timezone.utc)).total_seconds() <= 60
    assert items[0]["lease_expires_at"] == items[0]["lease_until"]
    tokens = [item["claim_token"] for item in items]
    assert len(set(tokens)) == 2 and all(t.startswith("ct_") and len(t) > 40 for t in tokens)
    stored = await reply_row(db, ids[0])
    assert stored.claim_token_hash == service.token_digest(tokens[0]) != tokens[0]
    again = (await client.post(CLAIM, json={"limit": 10, "lease_seconds": 60}, headers=kit.outbox)).json()["items"]
    assert [item["id"] for item in again] == ids[2:]
    listed = (await client.get("/api/v1/replies", params={"status": "claimed"}, headers=kit.outbox)).json()
    assert [item["id"] for item in listed["items"]] == ids


async def test_claim_filters_by_platform(client, db, factory):
    kit = await factory.brand()
    await approved_replies(db, kit, 2)
    assert (await client.post(CLAIM, json={"limit": 5, "lease_seconds": 60, "platform": "bluesky"},
                              headers=kit.outbox)).json()["items"] == []
    assert len((await client.post(CLAIM, json={"limit": 5, "lease_seconds": 60, "platform": "X"},
                                  headers=kit.outbox)).json()["items"]) == 2


async def test_racing_claims_never_hand_a_reply_to_two_claimers(client, db, factory):
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 40)
    answers = await asyncio.gather(*(client.post(CLAIM, json={"limit": 3, "lease_seconds": 60}, headers=kit.outbox)
                                     for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    handed = [item["id"] for a in answers for item in a.json()["items"]]
    assert len(handed) == len(set(handed)) == 40
    assert sorted(handed) == sorted(ids)


async def test_claimers_on_separate_connections_never_share_a_reply(database_url, db, factory):
    """Four claimers, each with its own engine and connections (as separate processes would have), race."""
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 60)
    claimers = [Database(database_url) for _ in range(4)]
    who = Principal(kind="api_key", id=1, brand_id=kit.id, label="test")
    try:
        async def drain(claimer: Database) -> list[int]:
            got: list[int] = []
            while batch := await service.claim(claimer, who, limit=4, lease_seconds=60, platform=None):
                got += [r.id for r in batch]
            return got

        results = await asyncio.gather(*(drain(c) for c in claimers for _ in range(3)))
    finally:
        for claimer in claimers:
            await claimer.dispose()
    handed = [i for got in results for i in got]
    assert sorted(handed) == sorted(ids)
    assert sum(1 for got in results if got) > 1, "the claimers should have shared the work"


async def test_a_reply_whose_lease_ended_is_handed_out_again(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    first = (await client.post(CLAIM, json={"limit": 1, "lease_seconds": 5}, headers=kit.outbox)).json()["items"]
    assert [r["id"] for r in first] == [reply_id]
    assert (await client.post(CLAIM, json={"limit": 1, "lease_seconds": 5}, headers=kit.outbox)).json()["items"] == []
    await asyncio.sleep(0)
    await execute(db, update(Reply).values(  # the five seconds pass
        lease_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(milliseconds=1)))
    second = (await client.post(CLAIM, json={"limit": 1, "lease_seconds": 30}, headers=kit.outbox)).json()["items"]
    assert [r["id"] for r in second] == [reply_id]
    assert second[0]["lease_until"] > first[0]["lease_until"]
    assert second[0]["claim_token"] != first[0]["claim_token"]
    stale = await client.post(posted(reply_id), json={"external_id": "p", "claim_token": first[0]["claim_token"]},
                              headers=kit.outbox)
    assert stale.status_code == 409 and "not held by this claim token" in stale.json()["detail"]


async def test_a_short_lease_runs_out_in_real_time(db, factory):
    kit = await factory.brand()
    await approved_replies(db, kit, 1)
    who = Principal(kind="api_key", id=1, brand_id=kit.id, label="test")
    assert len(await service.claim(db, who, limit=1, lease_seconds=1, platform=None)) == 1
    assert await service.claim(db, who, limit=1, lease_seconds=1, platform=None) == []
    await asyncio.sleep(1.05)
    assert len(await service.claim(db, who, limit=1, lease_seconds=1, platform=None)) == 1


async def test_posted_closes_the_loop_in_the_persons_history(client, db, factory, settings):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1, conversation_id="conv-7")
    await webhooks.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["reply.posted"])
    tokens = await claim(client, kit)
    answer = await client.post(posted(reply_id), headers=kit.outbox, json={
        "external_id": "post-1", "url": "https://x.example/acme/status/post-1",
        "posted_at": "2026-11-21T09:30:00Z", "claim_token": tokens[reply_id]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "posted" and body["external_id"] == "post-1" and body["lease_until"] is None
    reply = await reply_row(db, reply_id)
    assert await turn_status(db, reply_id) == "posted"
    def look(conn):
        return (conn.execute(select(Interaction).where(Interaction.direction == "outbound")).one(),
                conn.execute(select(Interaction).where(Interaction.external_id == reply.in_reply_to)).one(),
                conn.execute(select(Person).where(Person.id == reply.person_id)).one(),
                conn.scalars(select(WebhookDelivery.event_type)).all(),
                conn.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "reply")).all())
    ours, mention, person, events, audit = await db.run_read(look)
    assert (ours.external_id, ours.text, ours.person_id, ours.turn_id) == ("post-1", reply.text, reply.person_id,
                                                                          reply.turn_id)
    assert ours.in_reply_to == mention.external_id and ours.conversation_key == "conv-7"
    assert ours.occurred_at == dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.timezone.utc)
    assert person.reply_count == 1 and person.last_seen_at == ours.occurred_at
    assert events == ["reply.posted"] and audit == ["reply.posted"]
    history = (await client.get(f"/api/v1/people/{reply.person_id}/history", headers=kit.read)).json()["items"]
    assert [(h["kind"], h["external_id"]) for h in history][0] == ("reply", "post-1")


async def test_posted_again_with_the_same_id_changes_nothing_and_another_id_conflicts(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    token = (await claim(client, kit))[reply_id]
    first = await client.post(posted(reply_id), json={"external_id": "p-1", "claim_token": token}, headers=kit.outbox)
    again = await client.post(posted(reply_id), json={"external_id": "p-1", "claim_token": token}, headers=kit.outbox)
    other = await client.post(posted(reply_id), json={"external_id": "p-2", "claim_token": token}, headers=kit.outbox)
    assert (first.status_code, again.status_code, other.status_code) == (200, 200, 409)
    assert again.json() == first.json()
    assert other.headers["content-type"].startswith("application/problem+json") and "p-1" in other.json()["detail"]
    assert await scalar(db, select(func.count()).select_from(Interaction)
                        .where(Interaction.direction == "outbound")) == 1
    assert await scalar(db, select(Person.reply_count)) == 1
    assert (await client.post(failed(reply_id), json={"error": "x", "retry": True, "claim_token": token},
                              headers=kit.outbox)).status_code == 409


async def test_concurrent_confirmations_with_different_ids_let_one_win(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    token = (await claim(client, kit))[reply_id]
    answers = await asyncio.gather(*(client.post(posted(reply_id), json={"external_id": f"p-{i}", "claim_token": token},
                                                 headers=kit.outbox) for i in range(6)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 5


async def test_a_post_id_already_in_the_history_is_a_conflict(client, db, factory):
    kit = await factory.brand()
    first, second = await approved_replies(db, kit, 2)
    tokens = await claim(client, kit, limit=2)
    mention_id = (await reply_row(db, first)).in_reply_to

    async def confirm(reply_id: int, external_id: str) -> int:
        body = {"external_id": external_id, "claim_token": tokens[reply_id]}
        return (await client.post(posted(reply_id), json=body, headers=kit.outbox)).status_code

    assert await confirm(first, mention_id) == 409
    assert await confirm(first, "p-9") == 200
    assert await confirm(second, "p-9") == 409
    assert (await reply_row(db, second)).status == "claimed"


async def test_failed_with_retry_puts_the_reply_back_in_the_outbox(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    token = (await claim(client, kit, lease_seconds=600))[reply_id]
    answer = await client.post(failed(reply_id), json={"error": "rate limited by x", "retry": True,
                                                       "claim_token": token}, headers=kit.outbox)
    assert answer.status_code == 200
    assert answer.json()["status"] == "approved" and answer.json()["lease_until"] is None
    assert answer.json()["failures"] == 1 and answer.json()["error"] == "rate limited by x"
    assert await turn_status(db, reply_id) == "approved"
    assert (await client.post(failed(reply_id), json={"error": "again", "retry": True, "claim_token": token},
                              headers=kit.outbox)).status_code == 409, "the retry released the claim"
    again = (await client.post(CLAIM, json={"limit": 1, "lease_seconds": 5}, headers=kit.outbox)).json()["items"]
    assert [r["id"] for r in again] == [reply_id] and again[0]["claim_token"] != token


async def test_failed_for_good_sends_the_turn_back_to_the_reviewers(client, db, factory, settings):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    await webhooks.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["reply.failed"])
    token = (await claim(client, kit))[reply_id]
    report = {"error": "the post was deleted", "retry": False, "claim_token": token}
    answer = await client.post(failed(reply_id), json=report, headers=kit.outbox)
    assert answer.status_code == 200 and answer.json()["status"] == "failed"
    assert await turn_status(db, reply_id) == "failed"
    repeated = await client.post(failed(reply_id), json=report, headers=kit.outbox)
    assert repeated.status_code == 200 and repeated.json()["failures"] == 1
    delivery = await one(db, select(WebhookDelivery))
    assert delivery.event_type == "reply.failed" and delivery.payload["data"]["error"] == "the post was deleted"
    assert (await client.post(failed(reply_id), json=report | {"claim_token": "ct_other"},
                              headers=kit.outbox)).status_code == 409
    assert (await client.post(posted(reply_id), json={"external_id": "late", "claim_token": token},
                              headers=kit.outbox)).status_code == 409
    assert (await client.post(failed(reply_id), json=report | {"retry": True}, headers=kit.outbox)).status_code == 409
    assert (await client.post(CLAIM, json={"limit": 5, "lease_seconds": 5}, headers=kit.outbox)).json()["items"] == []


async def test_another_brands_replies_are_not_found(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    assert (await client.get("/api/v1/replies", headers=other.outbox)).json()["items"] == []
    assert (await client.post(CLAIM, json={"limit": 5, "lease_seconds": 5}, headers=other.outbox)).json()["items"] == []
    token = (await claim(client, kit))[reply_id]  # even with the token, another brand's key finds nothing
    for path, body in ((posted(reply_id), {"external_id": "p"}), (failed(reply_id), {"error": "e", "retry": False}),
                       (renew(reply_id), {"lease_seconds": 60})):
        answer = await client.post(path, json=body | {"claim_token": token}, headers=other.outbox)
        assert answer.status_code == 404 and answer.json()["type"].endswith("/not-found")
    assert (await reply_row(db, reply_id)).status == "claimed"


@pytest.mark.parametrize("holder", ["ingest", "read", "reviewer", "admin"])
async def test_only_outbox_keys_reach_the_outbox(client, db, factory, holder):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    headers = getattr(kit, holder)
    answers = [await client.get("/api/v1/replies", headers=headers),
               await client.post(CLAIM, json={"limit": 1, "lease_seconds": 5}, headers=headers),
               await client.post(posted(reply_id), json={"external_id": "p", "claim_token": "t"}, headers=headers),
               await client.post(failed(reply_id), json={"error": "e", "retry": False, "claim_token": "t"},
                                 headers=headers),
               await client.post(renew(reply_id), json={"lease_seconds": 60, "claim_token": "t"}, headers=headers)]
    assert [a.status_code for a in answers] == [403] * 5
    assert (await client.post(CLAIM, json={"limit": 1, "lease_seconds": 5})).status_code == 401
    assert (await reply_row(db, reply_id)).status == "approved"


@pytest.mark.parametrize("path, body, status", [
    (CLAIM, {"limit": 5, "lease_seconds": 0}, 422),
    (CLAIM, {"limit": 1000, "lease_seconds": 60}, 422),
    (CLAIM, {"limit": 0, "lease_seconds": 60}, 422),
    (CLAIM, {"limit": 5, "lease_seconds": 3601}, 422),
    (CLAIM, {"limit": 5}, 422),
    (CLAIM, {"limit": 5, "lease_seconds": 60, "owner": "me"}, 422),
    (CLAIM, {"limit": 5, "lease_seconds": 60, "platform": "not a platform"}, 422),
    (CLAIM, b'{"limit": 5,', 400),
    (CLAIM, b"\xff\xfe", 400),
    ("posted", {}, 422),
    ("posted", {"external_id": "", "claim_token": TOKEN}, 422),
    ("posted", {"external_id": "   ", "claim_token": TOKEN}, 422),
    ("posted", {"external_id": "p\n1", "claim_token": TOKEN}, 422),
    ("posted", {"external_id": "p", "posted_at": "yesterday", "claim_token": TOKEN}, 422),
    ("posted", {"external_id": "p", "posted_at": "2999-01-01T00:00:00Z", "claim_token": TOKEN}, 422),
    ("posted", {"external_id": "p", "extra": 1, "claim_token": TOKEN}, 422),
    ("posted", {"external_id": "p"}, 422),
    ("posted", {"external_id": "p", "claim_token": ""}, 422),
    ("posted", {"external_id": "p", "claim_token": "x" * 101}, 422),
    ("posted", {"external_id": "p", "claim_token": 7}, 422),
    ("posted", b"[", 400),
    ("failed", {"error": "e", "claim_token": TOKEN}, 422),
    ("failed", {"error": "", "retry": False, "claim_token": TOKEN}, 422),
    ("failed", {"error": "e", "retry": "yes", "claim_token": TOKEN}, 422),
    ("failed", {"error": "e", "retry": True}, 422),
    ("failed", b"not json", 400),
    ("renew", {"lease_seconds": 60}, 422),
    ("renew", {"claim_token": TOKEN}, 422),
    ("renew", {"claim_token": TOKEN, "lease_seconds": 4}, 422),
    ("renew", {"claim_token": TOKEN, "lease_seconds": 3601}, 422),
    ("renew", {"claim_token": TOKEN, "lease_seconds": 60, "owner": "me"}, 422),
    ("renew", b"{", 400),
])
async def test_bad_input_is_a_clear_4xx_and_changes_nothing(client, db, factory, path, body, status):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    token = (await claim(client, kit))[reply_id]
    before = await reply_row(db, reply_id)
    url = {"posted": posted(reply_id), "failed": failed(reply_id), "renew": renew(reply_id)}.get(path, path)
    if isinstance(body, bytes):
        answer = await client.post(url, content=body, headers=kit.outbox | {"content-type": "application/json"})
    else:
        body = {name: token if value is TOKEN else value for name, value in body.items()}
        answer = await client.post(url, json=body, headers=kit.outbox)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if status == 422:
        assert answer.json()["errors"][0]["field"]
    after = await reply_row(db, reply_id)
    assert (after.status, after.lease_until, after.claim_token_hash, after.failures) == \
        (before.status, before.lease_until, before.claim_token_hash, before.failures) == \
        ("claimed", before.lease_until, service.token_digest(token), 0)


@pytest.mark.parametrize("path, body", [
    ("posted", {"external_id": "p"}), ("failed", {"error": "e", "retry": True}), ("renew", {"lease_seconds": 60})])
async def test_a_missing_claim_token_is_named(client, db, factory, path, body):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    await claim(client, kit)
    answer = await client.post(f"/api/v1/replies/{reply_id}/{path}", json=body, headers=kit.outbox)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["field"] == "claim_token" and "claim_token" in error["message"]


@pytest.mark.parametrize("params", [{"status": "pending"}, {"limit": 0}, {"limit": 101}, {"cursor": "%%%"},
                                    {"cursor": "WyJ4IiwgMV0"}])
async def test_bad_list_parameters_are_422(client, factory, params):
    kit = await factory.brand()
    answer = await client.get("/api/v1/replies", params=params, headers=kit.outbox)
    assert answer.status_code in (400, 422), answer.text
    assert answer.status_code == 422


async def test_an_unknown_reply_is_404(client, factory):
    kit = await factory.brand()
    for path, body in ((posted(999_999), {"external_id": "p"}), (failed(999_999), {"error": "e", "retry": True}),
                       (renew(999_999), {"lease_seconds": 60}), ("/api/v1/replies/abc/posted", {"external_id": "p"})):
        answer = await client.post(path, json=body | {"claim_token": "ct_x"}, headers=kit.outbox)
        assert answer.status_code == 404, (path, answer.text)
