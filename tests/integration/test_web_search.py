"""Search and filters on the queue page (who, handle, words, platform, first contact, escalation rule): they
narrow the fair order and never reorder it, survive paging and decisions, and a value that cannot be used is
said in words on a 200 page. And the follow-up: a reviewer's text that lost the race goes to the queue as a
new reply to the same person, for a human to approve."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from assistant.db.audit import AuditEvent
from assistant.db.people import Person
from assistant.db.turns import Draft, Turn
from assistant.web import pages
from tests.browser.seed import ingest_mention, waiting_turn
from tests.integration.test_web import sign_in, token
from tests.integration.test_web_workspace import second_reviewer
from tests.support import turn_states
from tests.support.db import execute, one, scalar, scalars

ROW = re.compile(r'<li class="row[^"]*" id="turn-(\d+)"')


def listed(html: str) -> list[int]:
    """The turns in the waiting list, in the page's order."""
    return [int(n) for n in ROW.findall(html)]


def problems(html: str) -> list[str]:
    return re.findall(r'<p class="error" role="alert">(.*?)</p>', html, re.S)


@pytest.fixture
async def queue(client, kit, db) -> dict[str, int]:
    """Five people waiting in a known fair order, one of them a regular, and two escalated turns."""
    ana, _, _ = await waiting_turn(db, kit.id, handle="@ana_lopez", text="@acme where is my refund?",
                                   draft="Hi Ana, the refund left today.", minutes_ago=50,
                                   author={"handle": "@ana_lopez", "display_name": "Ana López"})
    bo, bo_person, _ = await waiting_turn(db, kit.id, handle="@bo", text="@acme the mug broke", draft="Oh no, Bo.",
                                          minutes_ago=40, platform="mastodon",
                                          author={"handle": "@bo", "display_name": "Bo 100% Real"})
    cy, _, _ = await waiting_turn(db, kit.id, handle="@cy", text="@acme REFUND please", draft="Hi Cy.",
                                  minutes_ago=30, author={"handle": "@cy", "display_name": "Cy a_b"})
    dee, _, _ = await waiting_turn(db, kit.id, handle="@dee", text="@acme hello", draft="Hi Dee, about your refund.",
                                   minutes_ago=20, author={"handle": "@dee", "display_name": "Dee 1000 Real"})
    ed, _, _ = await waiting_turn(db, kit.id, handle="@ed", text="@acme hi <script>", draft="Hi Ed.", minutes_ago=10,
                                  platform="mastodon", author={"handle": "@ed", "display_name": "Ed axb"})
    await execute(db, update(Person).where(Person.id == bo_person).values(reply_count=3))
    legal = (await ingest_mention(db, kit.id, handle="@fay", text="@acme my lawyer about the refund",
                                  created_at="2026-01-01T00:00:00Z")).turn_id
    safety = (await ingest_mention(db, kit.id, handle="@gus", text="@acme I got burned",
                                   created_at="2026-01-02T00:00:00Z")).turn_id
    await turn_states.escalate_by_rule(db, legal, "legal")
    await turn_states.escalate_by_rule(db, safety, "safety")
    await sign_in(client, kit.reviewer_email, kit.password)
    return {"ana": ana, "bo": bo, "cy": cy, "dee": dee, "ed": ed, "legal": legal, "safety": safety}


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["ana", "bo", "cy", "dee", "ed"]),
    ("person=ana", ["ana"]),
    ("person=ANA%20L%C3%B3p", ["ana"]),  # any case (of A to Z on SQLite)
    ("person=100%25", ["bo"]),  # a typed % is a percent sign, not a wildcard
    ("person=a_b", ["cy"]),  # and _ is an underscore
    ("person=real", ["bo", "dee"]),
    ("handle=%40Ana_Lopez", ["ana"]),  # the whole handle, with or without @, any case
    ("handle=ana", []),
    ("text=refund", ["ana", "cy", "dee"]),  # in what they wrote or in the draft
    ("text=%3Cscript%3E", ["ed"]),
    ("platform=mastodon", ["bo", "ed"]),
    ("first_contact=no", ["bo"]),
    ("first_contact=yes", ["ana", "cy", "dee", "ed"]),
    ("platform=mastodon&first_contact=yes", ["ed"]),
    ("text=refund&person=cy", ["cy"]),
    ("status=escalated", ["legal", "safety"]),
    ("status=escalated&rule=safety", ["safety"]),
    ("status=escalated&text=refund", ["legal"]),
    ("rule=legal", []),  # nobody waiting for review was escalated by a rule
])
async def test_each_filter_narrows_the_queue_in_its_fair_order(client, queue, query, expected) -> None:
    answer = await client.get(f"/?{query}")

    assert answer.status_code == 200
    assert listed(answer.text) == [queue[name] for name in expected]
    assert problems(answer.text) == []


async def test_the_counts_follow_the_search(client, queue) -> None:
    html = (await client.get("/?text=refund")).text

    assert '<span id="waiting-count" data-poll="/queue/count" aria-live="polite">3</span>' in html
    assert "of 5 people waiting match your search" in html
    assert 'Escalated (<span id="escalated-count">1</span>)' in html  # Fay's lawyer wrote about the refund
    assert 'href="/?status=escalated&amp;text=refund"' in html  # the tabs keep the search
    counted = (await client.get("/queue/count?text=refund")).json()
    assert (counted["waiting"], counted["escalated"], counted["problems"]) == (3, 1, [])
    assert (await client.get("/queue/count?first_contact=maybe")).json()["problems"] == [
        "First contact is yes or no. The first contact filter was left out."]


async def test_matches_are_counted_up_to_their_own_cap(client, queue, monkeypatch) -> None:
    monkeypatch.setattr(pages, "MATCH_CAP", 2)

    html = (await client.get("/?text=refund&limit=1")).text

    assert '<span id="waiting-count" data-poll="/queue/count" aria-live="polite">2+</span>' in html
    assert (await client.get("/queue/count?text=refund")).json()["label"] == "2+"
    assert (await client.get("/queue/count")).json()["label"] == "5"  # no search: the queue's own cap


async def test_paging_keeps_the_filters(client, queue) -> None:
    first = (await client.get("/?first_contact=yes&limit=2")).text
    assert listed(first) == [queue["ana"], queue["cy"]]
    more = re.search(r'<p class="more"><a href="([^"]+)">Next people</a>', first)
    assert more, "no link to the next people"
    link = more.group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query)["first_contact"] == ["yes"]

    second = (await client.get(link)).text

    assert listed(second) == [queue["dee"], queue["ed"]]
    assert '<span id="waiting-count" data-poll="/queue/count" aria-live="polite">4</span>' in second


@pytest.mark.parametrize(("query", "message", "expected"), [
    ("first_contact=maybe", "First contact is yes or no. The first contact filter was left out.",
     ["ana", "bo", "cy", "dee", "ed"]),
    ("platform=Not%20A%20Platform&person=ana", "A platform is a short lower-case name such as x, bluesky or "
     "mastodon. The platform filter was left out.", ["ana"]),
    ("handle=two%20words", "A handle is one word, such as @ana_lopez, without spaces, quotes or &lt; &gt;. The "
     "handle filter was left out.", ["ana", "bo", "cy", "dee", "ed"]),
    ("text=" + "a" * 201, "Search for at most 200 characters. The words filter was left out.",
     ["ana", "bo", "cy", "dee", "ed"]),
    ("person=%00", "Search text cannot contain control characters. The name filter was left out.",
     ["ana", "bo", "cy", "dee", "ed"]),
    ("status=archived", "There is no such queue view; showing the people waiting for review.",
     ["ana", "bo", "cy", "dee", "ed"]),
    ("limit=lots", "A page shows 1 to 50 people; showing 25.", ["ana", "bo", "cy", "dee", "ed"]),
    ("limit=0", "A page shows 1 to 50 people; showing 25.", ["ana", "bo", "cy", "dee", "ed"]),
    ("limit=99999999999999999999999", "A page shows 1 to 50 people; showing 25.", ["ana", "bo", "cy", "dee", "ed"]),
])
async def test_a_bad_value_is_said_in_words_and_the_page_still_answers(client, queue, query, message,
                                                                         expected) -> None:
    answer = await client.get(f"/?{query}")

    assert answer.status_code == 200
    assert problems(answer.text) == [message]
    assert listed(answer.text) == [queue[name] for name in expected]


async def test_what_was_typed_comes_back_escaped(client, queue) -> None:
    html = (await client.get('/?person=%3C%2Finput%3E%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&handle=x%3Cb%3E')).text

    assert "<script>alert(1)" not in html and "<b>" not in html
    assert 'value="&lt;/input&gt;&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "Nobody here matches your search." in html


async def test_a_decision_goes_back_to_the_search_it_was_taken_from(client, queue, db) -> None:
    html = (await client.get("/?platform=mastodon")).text
    back = re.search(r'name="back" value="([^"]*)"', html).group(1)
    assert back == "platform=mastodon"

    done = await client.post(f"/turns/{queue['bo']}/reject", follow_redirects=False, data={
        "_csrf_token": token(html), "reason": "spam", "back": back})
    assert (done.status_code, done.headers["location"]) == (303, "/?platform=mastodon&notice=rejected")
    # Only the view and the filters ride along, parsed again.
    odd = await client.post(f"/turns/{queue['ed']}/escalate", follow_redirects=False, data={
        "_csrf_token": token(html), "reason": "legal", "back": "platform=mastodon&next=//evil.example&handle=a b"})
    assert odd.headers["location"] == "/?platform=mastodon&notice=escalated"


# The follow-up --------------------------------------------------------------------------------------------

async def lost_race(settings, client, kit, db) -> tuple[int, str]:
    """Ana's turn, approved by the admin while the reviewer was writing; answers (turn id, the reviewer's page
    after their refused approval)."""
    turn_id, _, draft_id = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!",
                                              minutes_ago=45)
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text
    admin = await second_reviewer(settings, kit.admin_email, kit.password)
    try:
        admin_html = (await admin.get("/")).text
        assert (await admin.post(f"/turns/{turn_id}/approve", follow_redirects=False, data={
            "_csrf_token": token(admin_html), "draft_id": str(draft_id), "text": "Sorry Ana!"})).status_code == 303
    finally:
        await admin.__aexit__(None, None, None)
    late = await client.post(f"/turns/{turn_id}/approve", data={
        "_csrf_token": token(html), "draft_id": str(draft_id), "text": "Also: a voucher is on its way."})
    assert late.status_code == 409
    return turn_id, late.text


async def test_a_lost_reply_goes_to_the_queue_as_a_follow_up_for_a_human_to_approve(settings, client, kit,
                                                                                   db) -> None:
    turn_id, html = await lost_race(settings, client, kit, db)
    assert f'action="/turns/{turn_id}/follow-up"' in html and "Send mine as a follow-up" in html

    sent = await client.post(f"/turns/{turn_id}/follow-up", follow_redirects=False, data={
        "_csrf_token": token(html), "text": "Also: a voucher is on its way.", "back": ""})

    assert sent.status_code == 303
    new_id = int(parse_qs(urlsplit(sent.headers["location"]).query)["focus"][0])
    first = await one(db, select(Turn.__table__).where(Turn.id == turn_id))
    opened = await one(db, select(Turn.__table__).where(Turn.id == new_id))
    draft = await one(db, select(Draft.__table__).where(Draft.id == opened.current_draft_id))
    audit = await one(db, select(AuditEvent.__table__).where(AuditEvent.action == "turn.followed_up"))
    assert (first.status, opened.status, opened.person_id, opened.platform) == (
        "approved", "pending_review", first.person_id, first.platform)
    assert opened.waiting_since == first.waiting_since  # it keeps the person's place in the fair order
    assert (draft.text, draft.source) == ("Also: a voucher is on its way.", "human")
    assert (audit.subject_id, audit.data["follows_turn_id"]) == (new_id, turn_id)
    page = (await client.get(sent.headers["location"])).text
    assert "Your text is in the queue as a follow-up" in page and "A follow-up:" in page
    assert listed(page) == [new_id]
    # A human approves it like any reply.
    done = await client.post(f"/turns/{new_id}/approve", follow_redirects=False, data={
        "_csrf_token": token(page), "draft_id": str(draft.id), "text": draft.text})
    assert done.status_code == 303
    assert await scalar(db, select(Turn.status).where(Turn.id == new_id)) == "approved"


async def test_a_follow_up_is_refused_in_words_and_the_text_is_kept(settings, client, kit, db, factory) -> None:
    turn_id, html = await lost_race(settings, client, kit, db)
    csrf = token(html)

    empty = await client.post(f"/turns/{turn_id}/follow-up", data={"_csrf_token": csrf, "text": "   "})
    assert empty.status_code == 422 and 'id="mine-' in empty.text
    no_csrf = await client.post(f"/turns/{turn_id}/follow-up", data={"text": "Hi"})
    assert no_csrf.status_code == 403
    other, _, _ = await waiting_turn(db, (await factory.brand()).id, handle="@zed", text="@other hi", draft="Hi")
    assert (await client.post(f"/turns/{other}/follow-up", data={"_csrf_token": csrf, "text": "Hi"})).status_code == 404

    # Ana wrote again meanwhile: the text belongs in the reply to that.
    await waiting_turn(db, kit.id, handle="@ana", text="@acme any news?", draft="Hi Ana, yes.", minutes_ago=1)
    busy = await client.post(f"/turns/{turn_id}/follow-up", data={"_csrf_token": csrf, "text": "A voucher too."})
    assert busy.status_code == 409
    assert "has another turn waiting" in busy.text and "A voucher too." in busy.text
    still = (await client.get("/")).text
    waiting = await client.post(f"/turns/{listed(still)[0]}/follow-up", data={"_csrf_token": csrf, "text": "Hi"})
    assert waiting.status_code == 409 and "still waiting on this turn" in waiting.text
    assert len(await scalars(db, select(Turn.id))) == 3  # the two turns and the other brand's
