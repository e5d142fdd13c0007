"""A reply that failed for good sends its turn back to the reviewers; a new approval goes out again."""

from __future__ import annotations

from sqlalchemy import func, select

from assistant.db import Database
from assistant.db.outbox import Reply
from tests.support.db import scalar
from tests.support.factories import Factory
from tests.support.review_helpers import pending_turn, store_draft


async def test_a_failed_reply_can_be_approved_again_after_a_new_draft(client, db: Database, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)
    approved = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id},
                                 headers=kit.reviewer)
    assert approved.status_code == 200, approved.text
    reply_id = approved.json()["reply_id"]
    claimed = await client.post("/api/v1/replies/claim", json={"limit": 1, "lease_seconds": 60}, headers=kit.outbox)
    [item] = claimed.json()["items"]
    assert item["id"] == reply_id
    failed = await client.post(f"/api/v1/replies/{reply_id}/failed", headers=kit.outbox, json={
        "error": "account suspended", "retry": False, "claim_token": item["claim_token"]})
    assert failed.status_code == 200
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert turn["status"] == "failed"

    regenerated = await client.post(f"/api/v1/turns/{turn_id}/regenerate", json={"guidance": "shorter"},
                                    headers=kit.reviewer)
    assert regenerated.status_code == 202
    new_draft = await store_draft(db, turn_id, "Hi Ana, it ships today.")
    again = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": new_draft}, headers=kit.reviewer)
    assert again.status_code == 200, again.text
    assert again.json()["reply_id"] == reply_id

    claimed = await client.post("/api/v1/replies/claim", json={"limit": 5, "lease_seconds": 60}, headers=kit.outbox)
    assert [(item["id"], item["text"]) for item in claimed.json()["items"]] == [(reply_id, "Hi Ana, it ships today.")]
    assert await scalar(db, select(func.count()).select_from(Reply)) == 1
