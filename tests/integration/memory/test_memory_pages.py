"""Relationship memory's pages without a browser: the person's promises with their settle form, the queue's
promise badge and left-behind count, the left-behind page, the fairness page's answered share."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from assistant.db.base import utcnow
from assistant.db.turns import Turn
from tests.integration.test_web import sign_in, token
from tests.support.db import execute
from tests.support.memory_helpers import approved_reply, promises_of
from tests.support.review_helpers import pending_turn


async def test_the_person_page_lists_promises_and_a_reviewer_settles_one(client, db, factory):
    kit = await factory.brand()
    await approved_reply(client, db, kit, text="Hi Ana <b>x</b>. I'll check with the warehouse.")
    [promise] = await promises_of(db)
    await sign_in(client, kit.reviewer_email, kit.password)

    page = await client.get(f"/people/{promise.person_id}")
    assert page.status_code == 200
    assert "I&#39;ll check with the warehouse." in page.text and f'data-promise="{promise.id}"' in page.text
    no_csrf = await client.post(f"/promises/{promise.id}/settle", data={"outcome": "kept"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    dropped = await client.post(f"/promises/{promise.id}/settle", follow_redirects=False,
                                data={"outcome": "dropped", "reason": "", "_csrf_token": token(page.text)})
    assert dropped.status_code == 422 and (await promises_of(db))[0].status == "open"
    kept = await client.post(f"/promises/{promise.id}/settle", follow_redirects=False,
                             data={"outcome": "kept", "reason": "sent", "_csrf_token": token(page.text)})
    assert kept.status_code == 303 and kept.headers["location"].startswith(f"/people/{promise.person_id}")
    assert (await promises_of(db))[0].status == "kept"


async def test_the_queue_shows_the_promise_badge_and_the_left_behind_count(client, db, factory):
    kit = await factory.brand()
    await approved_reply(client, db, kit)
    [promise] = await promises_of(db)
    await pending_turn(client, db, kit, handle="@ana", text="@acme hello again", created_at=utcnow().isoformat())
    turn_id, _ = await pending_turn(client, db, kit, handle="@bo")
    await execute(db, update(Turn).where(Turn.id == turn_id).values(status="rejected"))
    await sign_in(client, kit.reviewer_email, kit.password)

    html = (await client.get("/")).text
    assert 'id="left-behind-count">1 left behind' in html
    assert "promise open" in html and "promise-badge" in html
    left = (await client.get("/left-behind")).text
    assert "rejected" in left and "Bo" in left
    assert (await client.get("/left-behind?why=nonsense")).status_code == 200
    assert (await client.get("/left-behind?cursor=zzz")).status_code == 200


async def test_the_fairness_page_shows_the_answered_share(client, db, factory):
    kit = await factory.brand()
    await approved_reply(client, db, kit, created_at=utcnow() - dt.timedelta(hours=1))
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/fairness")).text
    assert "People answered, by audience size" in html and "100.0 %" in html


async def test_a_follow_up_turn_shows_promise_due_in_the_queue(client, db, factory):
    from assistant.promises.service import run_sweep
    from tests.support.memory_helpers import make_due
    from tests.support.review_helpers import store_draft
    kit = await factory.brand()
    await approved_reply(client, db, kit)
    [promise] = await promises_of(db)
    await make_due(db, promise.id)
    [turn_id] = await run_sweep(db)
    await store_draft(db, turn_id, "Hi Ana, following up: the warehouse found it.")
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text
    assert '<span class="badge promise">promise due</span>' in html and "promise open" not in html
