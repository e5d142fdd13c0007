"""The review API (SPEC 5, issue 5): the fair queue, one turn, and every decision with its conflicts."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Row, event, func, insert, select

from assistant.db.audit import AuditEvent
from assistant.db.outbox import Reply
from assistant.db.turns import Decision, Turn
from assistant.db.webhooks import Webhook, WebhookDelivery
from assistant.services import app_services
from tests.support.db import execute, one, rows, scalar
from tests.support.factories import mention
from tests.support.review_helpers import pending_turn, post_mention, store_draft

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)


def at(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


async def audit_actions(db, turn_id: int) -> list[Row[Any]]:
    return await rows(db, select(AuditEvent).where(
        AuditEvent.subject_type == "turn", AuditEvent.subject_id == turn_id).order_by(AuditEvent.id))


async def test_approve_as_is_puts_the_draft_in_the_outbox(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit, handle="@ana")

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id}, headers=kit.reviewer)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "approved"
    reply, decision = await db.run_read(lambda conn: (
        conn.execute(select(Reply).where(Reply.id == body["reply_id"])).one(),
        conn.execute(select(Decision).where(Decision.turn_id == turn_id)).first()))
    assert reply.text == "Hi Ana, sorry about the wait: it ships today." and reply.turn_id == turn_id
    assert reply.approved_by_user_id == kit.reviewer_id and reply.author_handle == "ana"
    assert decision.action == "approve" and decision.draft_id == draft_id and decision.diff == ""
    assert decision.final_text == reply.text and decision.policy_hash
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert turn["status"] == "approved"
    assert turn["decisions"][0]["user"] == kit.reviewer_email
    assert [e.action for e in await audit_actions(db, turn_id)] == ["turn.approved"]


async def test_approve_edited_records_the_diff(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit, draft_text="Hi Ana, it ships Monday.")

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", headers=kit.reviewer,
                                 json={"draft_id": draft_id, "text": "Hi Ana, it ships today, tracking to follow."})

    assert response.status_code == 200, response.text
    decision = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["decisions"][0]
    assert decision["final_text"] == "Hi Ana, it ships today, tracking to follow."
    assert "-Hi Ana, it ships Monday." in decision["diff"]
    assert "+Hi Ana, it ships today, tracking to follow." in decision["diff"]
    reply = await one(db, select(Reply).where(Reply.id == response.json()["reply_id"]))
    assert reply.text == "Hi Ana, it ships today, tracking to follow."
    assert (await audit_actions(db, turn_id))[0].data["edited"] is True


@pytest.mark.parametrize("text", ["", " \n ", "bad \x00 byte", "bell \x07", "x" * 10_001])
async def test_approve_refuses_an_unusable_text(client, db, factory, text):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id, "text": text},
                                 headers=kit.reviewer)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "text"


async def test_approving_a_replaced_draft_is_stale(client, db, factory):
    kit = await factory.brand()
    turn_id, old_draft = await pending_turn(client, db, kit)
    assert (await post_mention(client, kit, text="@acme and another thing"))["turn_id"] == turn_id  # joins
    new_draft = await store_draft(db, turn_id, "Hi Ana, a better draft.")

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": old_draft},
                                 headers=kit.reviewer)

    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/stale-draft") and problem["current_draft_id"] == new_draft
    assert await scalar(db, select(func.count()).select_from(Reply)) == 0


async def test_a_new_mention_makes_the_draft_stale_while_the_reviewer_reads(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit, handle="@ana")
    joined = await post_mention(client, kit, handle="@ana", text="@acme also, the lid was cracked")
    assert joined["turn_id"] == turn_id

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id},
                                 headers=kit.reviewer)

    assert response.status_code == 409
    assert response.json()["turn_status"] == "drafting"
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert turn["drafts"][0]["stale"] is True and len(turn["mentions"]) == 2


async def test_approving_twice_is_a_conflict(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)
    first = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id}, headers=kit.reviewer)

    second = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id}, headers=kit.admin)

    assert first.status_code == 200 and second.status_code == 409
    assert second.json()["type"].endswith("/conflict")


async def test_two_reviewers_approving_at_once_one_wins(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)

    responses = await asyncio.gather(
        client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id}, headers=kit.reviewer),
        client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id, "text": "Hi Ana, edited."},
                    headers=kit.admin))

    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    assert await scalar(db, select(func.count()).select_from(Reply).where(Reply.turn_id == turn_id)) == 1
    assert await scalar(db, select(func.count()).select_from(Decision).where(Decision.turn_id == turn_id)) == 1
    assert await scalar(db, select(Turn.version).where(Turn.id == turn_id)) == 2


async def test_a_text_breaking_a_blocking_rule_is_refused_with_findings(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)
    text = "Thank you, valued customer. It ships today."

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id, "text": text},
                                 headers=kit.reviewer)

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/policy-blocked")
    [finding] = [f for f in problem["findings"] if f["severity"] == "block"]
    assert finding["rule"] == "banned_phrase"
    assert text[finding["start"]:finding["end"]] == "valued customer"
    assert (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["status"] == "pending_review"


async def test_an_admin_may_override_a_blocking_rule_with_a_reason(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)
    body = {"draft_id": draft_id, "text": "Thank you, valued customer.", "override_reason": "Quoting their words"}

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json=body, headers=kit.admin)

    assert response.status_code == 200, response.text
    decision = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.admin)).json()["decisions"][0]
    assert decision["override_reason"] == "Quoting their words" and decision["user"] == kit.admin_email
    [audit] = await audit_actions(db, turn_id)
    assert audit.data["override_reason"] == "Quoting their words"
    assert audit.data["blocking_rules"] == ["banned_phrase"]


async def test_a_reviewer_may_not_override(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)
    body = {"draft_id": draft_id, "text": "Thank you, valued customer.", "override_reason": "I insist"}

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json=body, headers=kit.reviewer)

    assert response.status_code == 403
    assert (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["status"] == "pending_review"


async def test_reject_with_a_reason(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)

    response = await client.post(f"/api/v1/turns/{turn_id}/reject", json={"reason": "Spam"}, headers=kit.reviewer)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert turn["status"] == "rejected"
    assert turn["decisions"][0] | {"id": 0, "at": ""} == {
        "id": 0, "action": "reject", "user": kit.reviewer_email, "final_text": None, "diff": None, "reason": "Spam",
        "override_reason": None, "at": ""}
    assert [e.action for e in await audit_actions(db, turn_id)] == ["turn.rejected"]
    again = await client.post(f"/api/v1/turns/{turn_id}/reject", json={"reason": "Spam"}, headers=kit.reviewer)
    assert again.status_code == 409
    approve = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id}, headers=kit.reviewer)
    assert approve.status_code == 409


async def test_escalate_with_a_reason_tells_subscribed_tools(client, db, factory):
    kit = await factory.brand()
    turn_id, _ = await pending_turn(client, db, kit)
    await execute(db, insert(Webhook).values(brand_id=kit.id, url="https://hooks.example/x", events=["turn.escalated"],
                                             secret="whsec_dGVzdA==", active=True))

    response = await client.post(f"/api/v1/turns/{turn_id}/escalate", json={"reason": "Needs the support lead"},
                                 headers=kit.reviewer)

    assert response.status_code == 200, response.text
    assert (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["status"] == "escalated"
    [delivery] = await rows(db, select(WebhookDelivery))
    assert delivery.event_type == "turn.escalated" and delivery.payload["data"]["turn_id"] == turn_id
    assert [e.action for e in await audit_actions(db, turn_id)] == ["turn.escalated"]
    # An escalated turn may still be rejected, but not escalated again.
    again = await client.post(f"/api/v1/turns/{turn_id}/escalate", json={"reason": "x"}, headers=kit.reviewer)
    assert again.status_code == 409
    reject = await client.post(f"/api/v1/turns/{turn_id}/reject", json={"reason": "Handled by phone"},
                               headers=kit.reviewer)
    assert reject.status_code == 200


@pytest.mark.parametrize("action", ["reject", "escalate"])
@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 2001},
                                  {"reason": "ok", "extra": 1}])
async def test_reject_and_escalate_need_a_reason(client, db, factory, action, body):
    kit = await factory.brand()
    turn_id, _ = await pending_turn(client, db, kit)

    response = await client.post(f"/api/v1/turns/{turn_id}/{action}", json=body, headers=kit.reviewer)

    assert response.status_code == 422, response.text
    assert (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["status"] == "pending_review"


async def test_regenerate_asks_for_a_new_draft(client, db, factory):
    kit = await factory.brand()
    turn_id, _ = await pending_turn(client, db, kit)

    response = await client.post(f"/api/v1/turns/{turn_id}/regenerate", json={"guidance": "Mention the refund"},
                                 headers=kit.reviewer)

    assert response.status_code == 202, response.text
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert turn["status"] == "drafting" and turn["drafts"][0]["stale"] is True


@pytest.mark.parametrize("scope", ["ingest", "outbox", "read"])
async def test_no_api_key_can_see_or_decide(client, db, factory, scope):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)
    headers = getattr(kit, scope)
    calls = [("GET", "/api/v1/turns", None), ("GET", f"/api/v1/turns/{turn_id}", None),
             ("POST", f"/api/v1/turns/{turn_id}/approve", {"draft_id": draft_id}),
             ("POST", f"/api/v1/turns/{turn_id}/reject", {"reason": "no"}),
             ("POST", f"/api/v1/turns/{turn_id}/escalate", {"reason": "no"}),
             ("POST", f"/api/v1/turns/{turn_id}/regenerate", {})]

    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
    assert (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["status"] == "pending_review"


async def test_another_brands_turn_is_not_found(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)

    for method, path, body in [("GET", f"/api/v1/turns/{turn_id}", None),
                               ("POST", f"/api/v1/turns/{turn_id}/approve", {"draft_id": draft_id}),
                               ("POST", f"/api/v1/turns/{turn_id}/reject", {"reason": "no"}),
                               ("POST", f"/api/v1/turns/{turn_id}/escalate", {"reason": "no"}),
                               ("POST", f"/api/v1/turns/{turn_id}/regenerate", {})]:
        response = await client.request(method, path, json=body, headers=other.admin)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get("/api/v1/turns", headers=other.reviewer)).json()["items"] == []


async def test_a_draft_of_another_turn_cannot_be_approved(client, db, factory):
    kit = await factory.brand()
    turn_id, _ = await pending_turn(client, db, kit, handle="@ana")
    _, other_draft = await pending_turn(client, db, kit, handle="@ben")

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": other_draft},
                                 headers=kit.reviewer)

    assert response.status_code == 409


def _author(handle: str, followers: int | None) -> dict[str, Any]:
    return {"handle": handle, "followers": followers} if followers is not None else {"handle": handle}


async def test_the_queue_serves_people_in_the_order_they_began_waiting(client, db, factory):
    kit = await factory.brand()
    famous, _ = await pending_turn(client, db, kit, handle="@star", created_at=at(30),
                                   author=_author("@star", 2_000_000))
    quiet, _ = await pending_turn(client, db, kit, handle="@quiet", created_at=at(10), author=_author("@quiet", 3))
    tie, _ = await pending_turn(client, db, kit, handle="@tie", created_at=at(30), author=_author("@tie", 1))
    await post_mention(client, kit, handle="@drafting", created_at=at(0))  # not yet drafted: not in the queue

    page = (await client.get("/api/v1/turns", headers=kit.reviewer)).json()

    assert [t["id"] for t in page["items"]] == [quiet, famous, tie]
    assert page["next_cursor"] is None
    first = page["items"][0]
    assert first["person"]["handles"] == [{"platform": "x", "handle": "quiet"}]
    assert first["person"]["first_contact"] is True and first["current_draft"]["source"] == "model"
    assert first["waiting_since"].startswith("2026-11-20T09:10:00")
    walked, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/turns", params=params, headers=kit.reviewer)).json()
        walked += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [quiet, famous, tie]
    drafting = (await client.get("/api/v1/turns", params={"status": "drafting"}, headers=kit.reviewer)).json()
    assert len(drafting["items"]) == 1 and drafting["items"][0]["current_draft"] is None


@pytest.mark.parametrize("params", [{"status": "nonsense"}, {"cursor": "not-a-cursor"}, {"limit": 0},
                                    {"limit": 101}, {"cursor": "WyJ4IiwgMV0"}])
async def test_the_queue_refuses_bad_parameters(client, factory, params):
    kit = await factory.brand()

    response = await client.get("/api/v1/turns", params=params, headers=kit.reviewer)

    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_queue_queries_do_not_grow_with_the_page_size(app, client, db, factory):
    kit = await factory.brand()
    batch = [mention(handle=f"@p{i}", created_at=at(i), author=_author(f"@p{i}", i)) for i in range(55)]
    results = (await client.post("/api/v1/mentions/batch", json={"mentions": batch}, headers=kit.ingest)).json()
    for result in results["results"]:
        await store_draft(db, result["turn_id"])
    await client.get("/api/v1/turns", params={"limit": 1}, headers=kit.reviewer)  # the token is now cached
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    served_by = app_services(app).db.engines  # the app's engines, not the test's own
    for engine in served_by:
        event.listen(engine, "before_cursor_execute", count)
    try:
        sizes = {}
        for limit in (5, 50):
            statements.clear()
            page = (await client.get("/api/v1/turns", params={"limit": limit}, headers=kit.reviewer)).json()
            assert len(page["items"]) == limit
            sizes[limit] = len(statements)
    finally:
        for engine in served_by:
            event.remove(engine, "before_cursor_execute", count)

    assert sizes[5] == sizes[50], sizes
    assert 0 < sizes[50] <= 12, statements


async def test_waiting_count_counts_turns_awaiting_review(client, db, factory):
    from assistant.review.service import waiting_count

    kit, other = await factory.brand(), await factory.brand()
    await pending_turn(client, db, kit, handle="@a")
    await pending_turn(client, db, kit, handle="@b")
    await post_mention(client, kit, handle="@c")
    await pending_turn(client, db, other, handle="@a")

    assert await waiting_count(db, kit.id) == 2
