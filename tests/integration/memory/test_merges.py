"""One person across platforms (issue 12, part 6): suggestions with evidence, confirmed by a reviewer,
undoable, in the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Row, select

from assistant.db.audit import AuditEvent
from assistant.db.memory import MergeSuggestion, Promise
from assistant.db.people import Handle, Interaction, Person
from assistant.memory import merges
from tests.integration.test_web import sign_in, token
from tests.support.db import one, rows, scalar, scalars
from tests.support.memory_helpers import approved_reply
from tests.support.review_helpers import post_mention


async def scan(db) -> None:
    await db.run_write(merges.scan, 0)


async def open_suggestions(db) -> list[Row[Any]]:
    return await rows(db, select(MergeSuggestion).order_by(MergeSuggestion.id))


async def test_clues_suggest_merges_with_their_evidence(client, db, factory):
    kit, other_brand = await factory.brand(), await factory.brand()
    ana_x = await post_mention(client, kit, handle="@ana", text="@acme order #A-44718 is late, ana@example.org")
    ana_ig = await post_mention(client, kit, handle="@ana.insta", platform="instagram",
                                text="hi! same order #A-44718, mail me at ANA@example.org")
    bo = await post_mention(client, kit, handle="@bo_new", text="I wrote you as @bo_old on Twitter, still nothing")
    bo_old = await post_mention(client, kit, handle="@bo_old", text="where is my parcel")
    await post_mention(client, other_brand, handle="@zed", text="order #A-44718 too")  # another brand: never
    await scan(db)
    await scan(db)  # reading again changes nothing

    found = await open_suggestions(db)
    pairs = {(s.person_id, s.other_person_id): s for s in found}
    ana = pairs[tuple(sorted((ana_x["person_id"], ana_ig["person_id"])))]
    assert {e["kind"] for e in ana.evidence} == {"email", "order"} and ana.status == "open"
    bob = pairs[tuple(sorted((bo["person_id"], bo_old["person_id"])))]
    assert bob.evidence[0]["detail"] == "says they wrote to us as @bo_old on x"
    assert len(found) == 2 and all(s.brand_id == kit.id for s in found)


async def test_same_display_name_on_two_platforms_within_a_day(client, db, factory):
    kit = await factory.brand()
    now = dt.datetime.now(dt.timezone.utc)
    one = await post_mention(client, kit, handle="@mlind", created_at=now.isoformat(),
                             author={"handle": "@mlind", "display_name": "Margot Lindqvist"})
    two = await post_mention(client, kit, handle="@margot.l", platform="bluesky", created_at=now.isoformat(),
                             author={"handle": "@margot.l", "display_name": "margot lindqvist"})
    await post_mention(client, kit, handle="@ana1", author={"handle": "@ana1", "display_name": "Ana"})
    await post_mention(client, kit, handle="@ana2", platform="bluesky", author={"handle": "@ana2", "display_name": "Ana"})
    await scan(db)
    [s] = await open_suggestions(db)
    assert {s.person_id, s.other_person_id} == {one["person_id"], two["person_id"]}
    assert s.evidence[0]["kind"] == "name" and "bluesky" in s.evidence[0]["detail"]


async def test_a_reviewer_merges_and_undoes_with_every_row_back(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    old = await approved_reply(client, db, kit, handle="@ana", text="Hi Ana, I'll check and get back to you.")
    new = await post_mention(client, kit, handle="@ana.insta", platform="instagram",
                             text="I wrote you as @ana on X, any news?")
    await scan(db)
    [suggestion] = await open_suggestions(db)
    old_person = await one(db, select(Person).where(Person.id == suggestion.person_id))
    before = (old_person.mention_count, old_person.reply_count)
    await sign_in(client, kit.reviewer_email, kit.password)
    page = await client.get("/merges")
    assert "says they wrote to us as @ana on x" in page.text
    csrf = token(page.text)
    assert (await client.post(f"/merges/{suggestion.id}/confirm", data={})).status_code == 403  # no CSRF token
    assert (await client.post(f"/merges/{suggestion.id}/explode", data={"_csrf_token": csrf})).status_code == 404

    merged = await client.post(f"/merges/{suggestion.id}/confirm", data={"_csrf_token": csrf}, follow_redirects=False)
    assert merged.status_code == 303
    keep, fold = suggestion.person_id, suggestion.other_person_id
    assert set(await scalars(db, select(Handle.platform).where(Handle.person_id == keep))) == {"x", "instagram"}
    assert await scalar(db, select(Person.merged_into_id).where(Person.id == fold)) == keep
    assert await scalar(db, select(Person.mention_count).where(Person.id == keep)) == before[0] + 1
    again = await client.post(f"/merges/{suggestion.id}/confirm", data={"_csrf_token": csrf})
    assert again.status_code == 409

    undone = await client.post(f"/merges/{suggestion.id}/undo", data={"_csrf_token": csrf}, follow_redirects=False)
    assert undone.status_code == 303
    assert set(await scalars(db, select(Handle.platform).where(Handle.person_id == keep))) == {"x"}
    assert set(await scalars(db, select(Interaction.person_id).where(Interaction.turn_id == new["turn_id"]))) == {fold}
    person = await one(db, select(Person).where(Person.id == keep))
    assert (person.mention_count, person.reply_count) == before
    assert (await one(db, select(Person).where(Person.id == fold))).merged_into_id is None
    assert await scalar(db, select(Promise.person_id)) == old_person.id
    actions = await scalars(db, select(AuditEvent.action).where(
        AuditEvent.action.in_(("person.merged", "person.unmerged"))).order_by(AuditEvent.id))
    assert actions == ["person.merged", "person.unmerged"]
    assert (await client.post(f"/merges/{suggestion.id}/undo", data={"_csrf_token": csrf})).status_code == 409

    await client.post("/logout", data={"_csrf_token": csrf})
    await sign_in(client, other.reviewer_email, other.password)
    other_csrf = token((await client.get("/merges")).text)
    assert (await client.post(f"/merges/{suggestion.id}/dismiss", data={"_csrf_token": other_csrf})).status_code == 404
