"""Saved replies over the API (SPEC 12): reviewers read, admins write, another brand's answer 404, and what
each kind of bad input gets."""

from __future__ import annotations

from sqlalchemy import func, select

from assistant.db.snippets import Snippet
from tests.support.db import scalar


async def test_admins_manage_saved_replies_and_reviewers_read_them(client, db, factory):
    kit = await factory.brand()
    made = await client.post("/api/v1/snippets", json={"name": "Refund", "text": "Hi {first_name}, refunded."},
                             headers=kit.admin)
    assert made.status_code == 201, made.text
    snippet = made.json()
    assert snippet == {"id": snippet["id"], "name": "Refund", "text": "Hi {first_name}, refunded."}

    listed = await client.get("/api/v1/snippets", headers=kit.reviewer)
    assert listed.status_code == 200 and listed.json() == [snippet]
    assert (await client.get("/api/v1/snippets", headers=kit.read)).status_code == 200

    renamed = await client.patch(f"/api/v1/snippets/{snippet['id']}", json={"name": "Refund sent"}, headers=kit.admin)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Refund sent"
    assert renamed.json()["text"] == "Hi {first_name}, refunded."

    gone = await client.delete(f"/api/v1/snippets/{snippet['id']}", headers=kit.admin)
    assert gone.status_code == 204
    assert (await client.get("/api/v1/snippets", headers=kit.reviewer)).json() == []
    assert (await client.delete(f"/api/v1/snippets/{snippet['id']}", headers=kit.admin)).status_code == 404


async def test_only_admins_write_and_other_brands_do_not_see(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    body = {"name": "Hello", "text": "Hello!"}
    assert (await client.post("/api/v1/snippets", json=body, headers=kit.reviewer)).status_code == 403
    assert (await client.post("/api/v1/snippets", json=body, headers=kit.ingest)).status_code == 403
    assert (await client.get("/api/v1/snippets", headers=kit.ingest)).status_code == 403
    made = (await client.post("/api/v1/snippets", json=body, headers=kit.admin)).json()
    assert (await client.patch(f"/api/v1/snippets/{made['id']}", json={"text": "x"}, headers=other.admin)).status_code == 404
    assert (await client.delete(f"/api/v1/snippets/{made['id']}", headers=other.admin)).status_code == 404
    assert (await client.get("/api/v1/snippets", headers=other.reviewer)).json() == []


async def test_bad_input_gets_a_precise_answer_and_stores_nothing(client, db, factory):
    kit = await factory.brand()
    assert (await client.post("/api/v1/snippets", json={"name": "A", "text": "a"}, headers=kit.admin)).status_code == 201
    cases = [
        ({"name": "A", "text": "again"}, 409, "already called"),             # the name is taken
        ({"name": "", "text": "x"}, 422, "name"),                            # empty name
        ({"name": "B"}, 422, "text"),                                        # text missing
        ({"name": "B", "text": "Hi {nickname}"}, 422, "{nickname}"),         # a placeholder nothing fills in
        ({"name": "B", "text": "   "}, 422, "whitespace"),                  # only whitespace
        ({"name": "B", "text": "x", "extra": 1}, 422, "extra"),              # unknown field
        ({"name": "B", "text": "bad\x00"}, 422, "NUL"),                      # a NUL character
    ]
    for body, status, words in cases:
        answer = await client.post("/api/v1/snippets", json=body, headers=kit.admin)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert words in answer.text, (body, answer.text)
    assert await scalar(db, select(func.count()).select_from(Snippet)) == 1
