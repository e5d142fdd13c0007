"""Learning from edits (issue 12, part 5): each approval's word-level diff, the brand's most frequent edits,
one action to turn one into a policy rule or an example, and the edit rate for the evaluation report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from assistant.db.base import utcnow
from assistant.db.memory import ReplyEdit
from assistant.db.tenancy import Brand
from assistant.memory.edits import edit_rates, frequent_edits
from assistant.policy import check_text
from assistant.policy.service import policy_of, set_brand_policy
from tests.integration.test_web import sign_in, token
from tests.support.db import rows, scalar
from tests.support.review_helpers import pending_turn

FILLER = "We apologize for the delay."


async def approve(client, db, kit, handle: str, draft: str, final: str | None) -> None:
    turn_id, draft_id = await pending_turn(client, db, kit, handle=handle, draft_text=draft)
    body = {"draft_id": draft_id} | ({"text": final} if final is not None else {})
    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json=body, headers=kit.reviewer)
    assert response.status_code == 200, response.text


async def seed(client, db, kit) -> None:
    await approve(client, db, kit, "@a", f"Hi A, {FILLER} It ships today.", "Hi A, it ships today.")
    await approve(client, db, kit, "@b", f"Hi B, {FILLER} Tracking follows.", "Hi B, tracking follows.")
    await approve(client, db, kit, "@c", "Hi C, it ships today.", None)


def window() -> dict:
    return {"since": utcnow() - dt.timedelta(days=1), "until": utcnow() + dt.timedelta(minutes=1)}


async def test_each_approval_records_its_word_diff_and_the_rates(client, db, factory):
    kit = await factory.brand()
    await seed(client, db, kit)
    edits = await rows(db, select(ReplyEdit).order_by(ReplyEdit.id))
    assert [r.size for r in edits] == [7, 7, 0]
    assert edits[0].removed == ["We apologize for the delay. It"] and edits[0].added == ["it"]
    rates = await db.run_read(lambda conn: edit_rates(conn, kit.id, **window()))
    assert (rates.approvals, rates.unchanged, rates.edited, rates.edit_rate) == (3, 1, 2, 2 / 3)
    assert rates.mean_edit_words == 7.0
    other = await factory.brand()
    assert (await db.run_read(lambda conn: edit_rates(conn, other.id, **window()))).approvals == 0


async def test_the_reviewers_sign_off_is_not_an_edit(client, db, factory):
    kit = await factory.brand()
    await db.run_write(set_brand_policy, kit.id, '[voice]\nsign_off = "–{initials}"\n')
    await approve(client, db, kit, "@a", "Hi A, it ships today.", "Hi A, it ships today. –RE")
    assert await scalar(db, select(ReplyEdit.size)) == 0


async def test_the_edits_page_turns_an_edit_into_a_rule_or_an_example(client, db, factory):
    kit = await factory.brand()
    for n in range(3):
        await approve(client, db, kit, f"@p{n}", f"Thanks. {FILLER}", "Thanks.")
    found, edited = await db.run_read(lambda conn: frequent_edits(conn, kit.id, **window()))
    assert edited == 3 and {(e.change, e.phrase, e.count) for e in found} == {
        ("removed", FILLER.lower(), 3), ("length", "shorter", 3)}
    top = next(e for e in found if e.change == "removed")

    await sign_in(client, kit.reviewer_email, kit.password)
    assert (await client.get("/admin/edits")).status_code == 403
    await client.post("/logout", data={"_csrf_token": token((await client.get("/login")).text)})
    await sign_in(client, kit.admin_email, kit.password)
    html = (await client.get("/admin/edits?days=7")).text
    assert "we apologize for the delay." in html and "3 approvals of drafts: 0 unchanged, 3 edited" in html
    csrf = token(html)

    assert (await client.post("/admin/edits/rule", data={"phrase": FILLER.lower()})).status_code == 403  # no CSRF
    response = await client.post("/admin/edits/rule", data={"phrase": FILLER.lower(), "_csrf_token": csrf},
                                 follow_redirects=False)
    assert response.status_code == 303
    source = await scalar(db, select(Brand.policy_toml).where(Brand.id == kit.id))
    assert "[[phrase_rules]]" in source
    findings = check_text(policy_of(source), f"Hi! {FILLER}", platform="x")
    assert [f.rule for f in findings] == ["warn_phrase"]

    example = await client.post("/admin/edits/example", data={"decision_id": str(top.decision_id),
                                                              "_csrf_token": csrf}, follow_redirects=False)
    assert example.status_code == 303
    source = await scalar(db, select(Brand.policy_toml).where(Brand.id == kit.id))
    [learned] = [e for e in policy_of(source).examples if e.text == "Thanks."]
    assert learned.expect == "pass" and learned.platform == "x"

    other = await factory.brand()
    before = await scalar(db, select(Brand.policy_toml).where(Brand.id == kit.id))
    for bad in ({"decision_id": "abc"}, {"decision_id": "999999"}):
        assert (await client.post("/admin/edits/example", data=bad | {"_csrf_token": csrf})).status_code in (404, 422)
    assert (await client.post("/admin/edits/rule", data={"phrase": " ", "_csrf_token": csrf})).status_code == 422
    assert await scalar(db, select(Brand.policy_toml).where(Brand.id == kit.id)) == before
    assert other.id != kit.id
