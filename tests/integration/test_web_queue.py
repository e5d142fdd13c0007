"""The queue page's escalated view (a human writes the reply), the sign-off pre-filled with the reviewer's
initials, the draft's source label, do-not-reply at approval, the focused card's history, and capped counts."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from assistant.db.outbox import Reply
from assistant.db.people import Person
from assistant.db.tenancy import User
from assistant.db.turns import Draft, Turn
from assistant.policy.service import set_brand_policy
from assistant.web import pages
from tests.browser.seed import ingest_mention, store_draft, waiting_turn
from tests.support import turn_states
from tests.support.db import execute, one, rows, scalar
from tests.integration.test_web import sign_in, token

SIGNED_POLICY = '[voice]\ndescription = "Warm."\nsign_off = "–{initials}"\n'


escalate_by_rule = turn_states.escalate_by_rule


def textarea(html: str, turn_id: int) -> str:
    found = re.search(rf'<textarea id="text-{turn_id}"[^>]*>(.*?)</textarea>', html, re.S)
    assert found, f"no textarea for turn {turn_id}"
    return found.group(1)


async def test_escalated_turns_have_their_own_view_with_the_rule_and_a_compose_box(client, kit, db) -> None:
    legal = (await ingest_mention(db, kit.id, handle="@carol", text="@acme my lawyer will call")).turn_id
    older = (await ingest_mention(db, kit.id, handle="@dan", text="@acme I got burned",
                                  created_at="2026-01-01T00:00:00Z")).turn_id
    await escalate_by_rule(db, legal, "legal")
    await escalate_by_rule(db, older, "safety")
    waiting, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(client, kit.reviewer_email, kit.password)

    queue = (await client.get("/")).text
    assert f'id="turn-{waiting}"' in queue and f'id="turn-{legal}"' not in queue
    assert 'href="/?status=escalated"' in queue and "Escalated (<span id=\"escalated-count\">2</span>)" in queue
    html = (await client.get("/?status=escalated")).text
    assert html.index(f'id="turn-{older}"') < html.index(f'id="turn-{legal}"')  # fair order here too
    assert f'id="turn-{waiting}"' not in html
    assert "by the policy rule “safety”" in html
    html = (await client.get(f"/?status=escalated&focus={legal}")).text
    assert "by the policy rule “legal”" in html
    assert textarea(html, legal) == "" and "Send this reply" in html
    assert f'action="/turns/{legal}/escalate"' not in html and f'action="/turns/{legal}/reject"' in html

    empty = await client.post(f"/turns/{legal}/approve", data={"_csrf_token": token(html), "view": "escalated",
                                                               "text": "  "})
    assert empty.status_code == 422
    sent = await client.post(f"/turns/{legal}/approve", follow_redirects=False, data={
        "_csrf_token": token(html), "view": "escalated", "text": "Hi Carol, our legal team will write to you today."})
    assert sent.status_code == 303 and sent.headers["location"] == "/?status=escalated&notice=approved"
    def look(conn):
        turn = conn.execute(select(Turn).where(Turn.id == legal)).one()
        return (turn, conn.execute(select(Draft).where(Draft.id == turn.current_draft_id)).one(),
                conn.execute(select(Reply).where(Reply.turn_id == legal)).first())
    turn, draft, reply = await db.run_read(look)
    assert (turn.status, draft.source, reply.text) == ("approved", "human",
                                                       "Hi Carol, our legal team will write to you today.")


async def test_the_reply_box_is_prefilled_with_the_draft_signed_with_the_reviewers_initials(client, kit, db) -> None:
    await db.run_write(set_brand_policy, kit.id, SIGNED_POLICY)
    await execute(db, update(User).where(User.id == kit.reviewer_id).values(display_name="Maria del Rio"))
    turn_id, _, draft_id = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Hi Ana, today.")
    await sign_in(client, kit.reviewer_email, kit.password)

    html = (await client.get("/")).text

    assert textarea(html, turn_id) == "Hi Ana, today. –MDR"
    assert html.count("Hi Ana, today.") == 2  # once in the box, once on the backdrop that underlines findings
    assert "{initials}" not in html and "Missing sign-off" not in html
    done = await client.post(f"/turns/{turn_id}/approve", follow_redirects=False, data={
        "_csrf_token": token(html), "draft_id": str(draft_id), "text": textarea(html, turn_id)})
    assert done.status_code == 303
    assert await scalar(db, select(Reply.text).where(Reply.turn_id == turn_id)) == "Hi Ana, today. –MDR"


async def test_the_page_signs_a_reply_left_unsigned_and_takes_a_plain_hyphen(client, kit, db) -> None:
    await db.run_write(set_brand_policy, kit.id, SIGNED_POLICY)
    t1, _, d1 = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Hi Ana, today.")
    t2, _, d2 = await waiting_turn(db, kit.id, handle="@bo", text="@acme late too", draft="Hi Bo.")
    legal = (await ingest_mention(db, kit.id, handle="@carol", text="@acme my lawyer")).turn_id
    await escalate_by_rule(db, legal, "legal")
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text

    unsigned = await client.post(f"/turns/{t1}/approve", follow_redirects=False, data={
        "_csrf_token": token(html), "draft_id": str(d1), "text": "Hi Ana, today."})
    hyphen = await client.post(f"/turns/{t2}/approve", follow_redirects=False, data={
        "_csrf_token": token(html), "draft_id": str(d2), "text": "Hi Bo. -RE"})
    escalated = await client.post(f"/turns/{legal}/approve", follow_redirects=False, data={
        "_csrf_token": token(html), "view": "escalated", "text": "Hi Carol, our legal team will write today."})

    assert (unsigned.status_code, hyphen.status_code, escalated.status_code) == (303, 303, 303)
    texts = dict(await rows(db, select(Reply.turn_id, Reply.text)))
    assert texts == {t1: "Hi Ana, today. –RE", t2: "Hi Bo. -RE", legal: "Hi Carol, our legal team will write today. –RE"}


@pytest.mark.parametrize(("source", "error", "label"), [
    ("fallback", "no model configured", "fallback: no model configured"),
    ("fallback", "model answered 500 after 4 attempts", "fallback: the model failed (model answered 500 after 4 attempts)"),
    ("model", None, "written by the model"),
])
async def test_the_draft_says_where_it_came_from(client, kit, db, source, error, label) -> None:
    turn_id = (await ingest_mention(db, kit.id, handle="@ana", text="@acme late")).turn_id
    await store_draft(db, turn_id, "Hi Ana, a person will follow up.", source=source, error=error)
    await sign_in(client, kit.reviewer_email, kit.password)

    html = (await client.get("/")).text

    assert f'<span class="source source-{source}">{label}</span>' in html
    assert "the model was unavailable" not in html


async def test_approving_for_a_person_who_opted_out_meanwhile_is_refused(client, kit, db) -> None:
    turn_id, person_id, draft_id = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Hi Ana.")
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text
    await execute(db, update(Person).where(Person.id == person_id).values(do_not_reply=True))

    answer = await client.post(f"/turns/{turn_id}/approve", data={"_csrf_token": token(html),
                                                                 "draft_id": str(draft_id), "text": "Hi Ana."})

    assert answer.status_code == 409 and "asked us not to reply" in answer.text
    assert (await one(db, select(Turn).where(Turn.id == turn_id))).status == "pending_review"


async def test_the_list_links_each_person_and_only_the_focused_one_is_shown(client, kit, db) -> None:
    first, p1, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme first words", draft="Hi Ana", minutes_ago=9)
    second, p2, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme second words", draft="Hi Bo", minutes_ago=5)
    await sign_in(client, kit.reviewer_email, kit.password)

    html = (await client.get("/")).text
    assert f'<section class="person-pane turn" id="person" data-turn="{first}"' in html
    assert f'href="/?focus={second}#person"' in html and f'href="/?focus={first}#person" aria-current="true"' in html
    assert html.count('id="person"') == 1 and "Hi Bo" not in html

    focused = (await client.get(f"/?focus={second}")).text
    assert f'id="person" data-turn="{second}"' in focused and "Hi Ana<" not in focused
    assert "@acme first words" in focused  # the list shows everyone's first words


async def test_the_counts_are_capped(client, kit, db, monkeypatch) -> None:
    for i in range(3):
        await waiting_turn(db, kit.id, handle=f"@p{i}", text=f"@acme {i}", draft=f"Hi {i}")
    monkeypatch.setattr(pages, "WAITING_CAP", 2)
    await sign_in(client, kit.reviewer_email, kit.password)

    assert '<span id="waiting-count" data-poll="/queue/count" aria-live="polite">2+</span>' in (await client.get("/")).text
    assert (await client.get("/queue/count")).json() | {"escalated": 0} == {
        "waiting": 2, "label": "2+", "escalated": 0, "escalated_label": "0", "problems": []}
