"""A human writes the reply (escalated turns), a person who opted out is never answered, and the sign-off is
the approving reviewer's: initials, the pre-filled text, and a 422 that says exactly what to append."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from assistant.db.audit import AuditEvent
from assistant.db.outbox import Reply
from assistant.db.people import Person
from assistant.db.tenancy import User
from assistant.db.turns import Decision, Draft, Turn
from assistant.policy import load_policy
from assistant.policy.service import set_brand_policy
from assistant.review.service import initials, signed
from tests.support.db import execute, one, scalar
from tests.support.review_helpers import escalated_turn, pending_turn, post_mention

SIGNED_POLICY = '[voice]\ndescription = "Warm."\nsign_off = "–{initials}"\n'


async def replies(db) -> int:
    return await scalar(db, select(func.count()).select_from(Reply))


async def test_a_human_writes_the_reply_of_an_escalated_turn(client, db, factory):
    kit = await factory.brand()
    turn_id = await escalated_turn(client, db, kit, handle="@ana", text="@acme I will sue you")
    shown = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert shown["status"] == "escalated" and shown["escalation_rule"] == "legal" and shown["current_draft"] is None

    text = "Hi Ana, I am sorry this went so badly.\nOur team lead will call you today."
    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"text": text}, headers=kit.reviewer)

    assert response.status_code == 200, response.text
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert turn["status"] == "approved"
    draft = turn["current_draft"]
    assert (draft["source"], draft["text"], draft["model"], draft["stale"]) == ("human", text, None, False)
    [decision] = turn["decisions"]
    assert decision["user"] == kit.reviewer_email and decision["final_text"] == text
    assert "+Hi Ana, I am sorry this went so badly.\n" in decision["diff"] and "\n-" not in decision["diff"]
    def look(conn):
        return (conn.execute(select(Reply).where(Reply.id == response.json()["reply_id"])).one(),
                conn.execute(select(Decision).where(Decision.turn_id == turn_id)).first(),
                conn.execute(select(AuditEvent).where(AuditEvent.subject_type == "turn",
                                                      AuditEvent.subject_id == turn_id)).all())
    reply, row, [audit] = await db.run_read(look)
    assert reply.text == text and reply.draft_id == draft["id"] and row.draft_id == draft["id"] and row.policy_hash
    assert audit.action == "turn.approved" and audit.data["written_by_human"] is True


async def test_explicit_null_draft_id_works_too_and_a_reviewer_escalated_draft_turns_stale(client, db, factory):
    kit = await factory.brand()
    turn_id, model_draft = await pending_turn(client, db, kit)
    assert (await client.post(f"/api/v1/turns/{turn_id}/escalate", json={"reason": "VIP"},
                              headers=kit.reviewer)).status_code == 200

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": None, "text": "Hi Ana, done."},
                                 headers=kit.admin)

    assert response.status_code == 200, response.text
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.admin)).json()
    assert turn["current_draft"]["source"] == "human" and turn["current_draft"]["id"] != model_draft
    assert [d["stale"] for d in turn["drafts"] if d["id"] == model_draft] == [True]


async def test_a_human_reply_is_checked_against_the_policy(client, db, factory):
    kit = await factory.brand()
    turn_id = await escalated_turn(client, db, kit)

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"text": "Dear valued customer, no."},
                                 headers=kit.reviewer)

    assert response.status_code == 422 and response.json()["type"].endswith("/policy-blocked")
    assert await scalar(db, select(func.count()).select_from(Draft).where(Draft.turn_id == turn_id)) == 0
    assert (await one(db, select(Turn).where(Turn.id == turn_id))).status == "escalated"


@pytest.mark.parametrize("body", [{}, {"draft_id": None}, {"text": ""}, {"draft_id": None, "text": "  "}])
async def test_without_a_draft_id_the_text_is_required(client, db, factory, body):
    kit = await factory.brand()
    turn_id = await escalated_turn(client, db, kit)

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json=body, headers=kit.reviewer)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "text"


async def test_a_turn_with_a_draft_to_review_needs_its_draft_id(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit)

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"text": "Hi Ana, mine."},
                                 headers=kit.reviewer)

    assert response.status_code == 409
    assert response.json()["type"].endswith("/stale-draft") and response.json()["current_draft_id"] == draft_id
    drafting = (await post_mention(client, kit, handle="@bo"))["turn_id"]
    response = await client.post(f"/api/v1/turns/{drafting}/approve", json={"text": "Hi Bo."}, headers=kit.reviewer)
    assert response.status_code == 409 and response.json()["turn_status"] == "drafting"
    assert await replies(db) == 0


async def test_a_decided_turn_cannot_get_a_human_reply(client, db, factory):
    kit = await factory.brand()
    turn_id = await escalated_turn(client, db, kit)
    assert (await client.post(f"/api/v1/turns/{turn_id}/reject", json={"reason": "phoned"},
                              headers=kit.reviewer)).status_code == 200

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"text": "Hi."}, headers=kit.reviewer)

    assert response.status_code == 409 and response.json()["type"].endswith("/conflict")


async def test_approving_for_a_person_who_opted_out_since_is_409(client, db, factory):
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit, handle="@ana")
    escalated = await escalated_turn(client, db, kit, handle="@ana", text="@acme lawyer", conversation_id="c2")
    await execute(db, update(Person).values(do_not_reply=True))

    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id},
                                 headers=kit.reviewer)
    human = await client.post(f"/api/v1/turns/{escalated}/approve", json={"text": "Hi Ana."}, headers=kit.admin)

    for answer in (response, human):
        assert answer.status_code == 409, answer.text
        problem = answer.json()
        assert problem["type"].endswith("/do-not-reply") and "asked us not to reply" in problem["detail"]
        assert problem["person_id"]
    assert await replies(db) == 0
    turn = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert turn["status"] == "pending_review" and turn["decisions"] == []


@pytest.mark.parametrize(("name", "email", "expected"), [
    ("Maria del Rio", "m@x.example", "MDR"), ("Ana", "a@x.example", "AN"), ("ana maria lopez garcia", "", "AML"),
    ("  José  Núñez ", "", "JN"), ("🌸 Aiko 🌸", "", "AI"), ("", "mary.rose@x.example", "MR"),
    ("", "reviewer@x.example", "RE"), ("42", "", ""),
])
def test_initials(name, email, expected):
    assert initials(name, email) == expected


def test_signed_adds_the_reviewers_sign_off_only_when_missing():
    policy = load_policy(SIGNED_POLICY)
    assert signed(policy, "Hi Ana, done.", "MR") == "Hi Ana, done. –MR"
    assert signed(policy, "Hi Ana, done. –JK", "MR") == "Hi Ana, done. –JK"
    assert signed(load_policy('[voice]\ndescription = "x"\n'), "Hi", "MR") == "Hi"


async def test_approving_a_draft_without_the_sign_off_says_exactly_what_to_append(client, db, factory):
    kit = await factory.brand()
    await db.run_write(set_brand_policy, kit.id, SIGNED_POLICY)
    await execute(db, update(User).where(User.id == kit.reviewer_id).values(display_name="Maria del Rio"))
    turn_id, draft_id = await pending_turn(client, db, kit, draft_text="Hi Ana, it ships today.")

    refused = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id},
                                headers=kit.reviewer)

    assert refused.status_code == 422
    problem = refused.json()
    assert problem["append"] == " –MDR" and problem["sign_off"] == "–MDR"
    assert problem["suggested_text"] == "Hi Ana, it ships today. –MDR"
    assert 'Append " –MDR"' in problem["detail"]
    assert problem["errors"] == [{"field": "text", "message": 'Missing sign-off: append " –MDR" to the end of the reply'}]
    done = await client.post(f"/api/v1/turns/{turn_id}/approve", headers=kit.reviewer,
                             json={"draft_id": draft_id, "text": problem["suggested_text"]})
    assert done.status_code == 200, done.text
