"""People endpoints: lookup by handle, profile, and history pages that neither skip nor repeat."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, select, update

from assistant.auth import service as auth
from assistant.db.audit import AuditEvent
from assistant.db.people import Note
from assistant.services import app_services
from tests.support.factories import mention


async def test_find_by_platform_and_handle_case_insensitive_with_or_without_at(client, factory) -> None:
    brand = await factory.brand()
    ana = (await client.post("/api/v1/mentions", json=mention(handle="@Ana_B"), headers=brand.ingest)).json()
    await client.post("/api/v1/mentions", json=mention(handle="@bo"), headers=brand.ingest)
    for handle in ("ana_b", "@ANA_B", "Ana_b"):
        found = await client.get("/api/v1/people", params={"platform": "X", "handle": handle}, headers=brand.read)
        assert found.status_code == 200
        assert [p["id"] for p in found.json()["items"]] == [ana["person_id"]]
    other_platform = await client.get("/api/v1/people", params={"platform": "bluesky", "handle": "ana_b"},
                                      headers=brand.read)
    assert other_platform.json()["items"] == []
    everyone = await client.get("/api/v1/people", headers=brand.read)
    assert len(everyone.json()["items"]) == 2
    bad = await client.get("/api/v1/people", params={"handle": "<script>"}, headers=brand.read)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "handle"


async def test_profile(client, factory) -> None:
    brand = await factory.brand()
    first = (await client.post("/api/v1/mentions", json=mention(handle="@Ana", created_at="2026-01-01T10:00:00Z"),
                               headers=brand.ingest)).json()
    await client.post("/api/v1/mentions", json=mention(handle="ana", created_at="2026-01-02T10:00:00Z"),
                      headers=brand.ingest)
    note = await client.post(f"/api/v1/people/{first['person_id']}/notes", json={"text": "prefers email"},
                             headers=brand.reviewer)
    assert note.status_code == 201
    profile = (await client.get(f"/api/v1/people/{first['person_id']}", headers=brand.read)).json()
    assert profile["handles"] == [{"platform": "x", "handle": "ana"}]
    assert profile["mention_count"] == 2 and profile["reply_count"] == 0 and profile["first_contact"] is True
    assert profile["do_not_reply"] is False
    assert profile["first_seen_at"].startswith("2026-01-01T10:00:00")
    assert profile["last_seen_at"].startswith("2026-01-02T10:00:00")
    assert [n["text"] for n in profile["notes"]] == ["prefers email"]


async def history_pages(client: Any, brand: Any, person_id: int, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.get(f"/api/v1/people/{person_id}/history", params=params, headers=brand.read)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
async def test_history_pages_neither_skip_nor_repeat(client, factory, db, limit) -> None:
    brand = await factory.brand()
    base = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
    person_id = None
    # 30 mentions, many sharing one instant, plus notes at the same instants.
    for n in range(30):
        at = base + dt.timedelta(minutes=n // 4)
        body = mention(f"h{n}", handle="@pager", created_at=at.isoformat())
        person_id = (await client.post("/api/v1/mentions", json=body, headers=brand.ingest)).json()["person_id"]
    for n in range(6):
        note = await client.post(f"/api/v1/people/{person_id}/notes", json={"text": f"note {n}"},
                                 headers=brand.reviewer)
        assert note.status_code == 201
    def same_instants(conn: Connection) -> None:  # notes land on the same instants as mentions
        note_ids = list(conn.execute(select(Note.id).order_by(Note.id)).scalars())
        for n, note_id in enumerate(note_ids, start=1):
            conn.execute(update(Note).where(Note.id == note_id).values(created_at=base + dt.timedelta(minutes=n)))

    await db.run_write(same_instants)
    pages = await history_pages(client, brand, person_id, limit)
    items = [i for page in pages for i in page]
    assert all(len(page) <= limit for page in pages)
    keys = [(i["kind"], i["id"]) for i in items]
    assert len(keys) == len(set(keys)) == 36
    ats = [i["at"] for i in items]
    assert ats == sorted(ats, reverse=True)
    # Within one instant: messages (newest id first) before notes.
    single = [(i["kind"], i["id"]) for page in await history_pages(client, brand, person_id, 100) for i in page]
    assert keys == single


async def test_history_is_newest_first_both_ways(client, factory) -> None:
    brand = await factory.brand()
    a = (await client.post("/api/v1/mentions", json=mention("x1", created_at="2024-01-01T00:00:00Z"),
                           headers=brand.ingest)).json()
    await client.post("/api/v1/history/import", headers=brand.ingest | {"Content-Type": "application/x-ndjson"},
                      content=b'{"direction": "outbound", "platform": "x", "external_id": "r1", "text": "on it",'
                              b' "created_at": "2024-01-02T00:00:00Z", "in_reply_to": "x1"}\n')
    items = (await client.get(f"/api/v1/people/{a['person_id']}/history", headers=brand.read)).json()["items"]
    assert [(i["kind"], i["external_id"]) for i in items] == [("reply", "r1"), ("mention", "x1")]


@pytest.mark.parametrize("params", [{"cursor": "garbage!"}, {"cursor": "WzEsMiwzXQ"}, {"cursor": "WyJ4IiwxLDJd"},
                                    {"limit": 0}, {"limit": 101}, {"limit": "ten"}])
async def test_bad_cursor_or_limit_is_422(client, factory, params) -> None:
    brand = await factory.brand()
    person = (await client.post("/api/v1/mentions", json=mention(), headers=brand.ingest)).json()["person_id"]
    for path in (f"/api/v1/people/{person}/history", "/api/v1/people"):
        response = await client.get(path, params=params, headers=brand.read)
        if path == "/api/v1/people" and params.get("cursor") == "WyJ4IiwxLDJd":
            continue  # a three-part cursor is not a people cursor either, but checked above
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["field"] in {"cursor", "limit"}


async def test_people_list_pages(client, factory) -> None:
    brand = await factory.brand()
    for n in range(7):
        await client.post("/api/v1/mentions", json=mention(handle=f"@p{n}"), headers=brand.ingest)
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/api/v1/people", params=params, headers=brand.read)).json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7


async def test_unknown_person_is_404(client, factory) -> None:
    brand = await factory.brand()
    for path in ("/api/v1/people/424242", "/api/v1/people/424242/history"):
        response = await client.get(path, headers=brand.read)
        assert response.status_code == 404



async def test_merging_folds_the_other_person_in_and_the_other_answers_404(client, factory, db) -> None:
    brand = await factory.brand()
    ana = (await client.post("/api/v1/mentions", json=mention(handle="@ana"), headers=brand.ingest)).json()
    await client.post("/api/v1/mentions", json=mention(handle="@ana"), headers=brand.ingest)
    alt = (await client.post("/api/v1/mentions", json=mention(handle="@ana_alt"), headers=brand.ingest)).json()
    note = await client.post(f"/api/v1/people/{alt['person_id']}/notes", json={"text": "same as @ana"},
                             headers=brand.reviewer)
    assert note.status_code == 201 and note.json()["text"] == "same as @ana"

    merged = await client.post(f"/api/v1/people/{ana['person_id']}/merge", json={"other_id": alt["person_id"]},
                               headers=brand.admin)

    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert sorted(h["handle"] for h in body["handles"]) == ["ana", "ana_alt"]
    assert body["mention_count"] == 3 and [n["text"] for n in body["notes"]] == ["same as @ana"]
    history = (await client.get(f"/api/v1/people/{ana['person_id']}/history", headers=brand.read)).json()
    assert len([i for i in history["items"] if i["kind"] == "mention"]) == 3
    gone = await client.get(f"/api/v1/people/{alt['person_id']}", headers=brand.read)
    assert gone.status_code == 404
    found = await client.get("/api/v1/people", params={"handle": "@ana_alt"}, headers=brand.read)
    assert [p["id"] for p in found.json()["items"]] == [ana["person_id"]]


@pytest.mark.parametrize("who, other, status", [("reviewer", "alt", 403), ("admin", "self", 422),
                                                ("admin", "elsewhere", 404)])
async def test_a_merge_is_for_admins_of_the_brand_and_never_of_a_person_with_themselves(client, factory, who, other,
                                                                                        status) -> None:
    brand, stranger = await factory.brand(), await factory.brand()
    ana = (await client.post("/api/v1/mentions", json=mention(handle="@ana"), headers=brand.ingest)).json()
    alt = (await client.post("/api/v1/mentions", json=mention(handle="@alt"), headers=brand.ingest)).json()
    theirs = (await client.post("/api/v1/mentions", json=mention(handle="@x"), headers=stranger.ingest)).json()
    other_id = {"alt": alt, "self": ana, "elsewhere": theirs}[other]["person_id"]

    refused = await client.post(f"/api/v1/people/{ana['person_id']}/merge", json={"other_id": other_id},
                                headers=getattr(brand, who))

    assert refused.status_code == status, refused.text
    profile = (await client.get(f"/api/v1/people/{ana['person_id']}", headers=brand.read)).json()
    assert [h["handle"] for h in profile["handles"]] == ["ana"] and profile["mention_count"] == 1


async def test_a_reviewer_renames_and_flags_a_person_and_the_audit_log_says_so(client, factory, db) -> None:
    brand = await factory.brand()
    person = (await client.post("/api/v1/mentions", json=mention(handle="@ana"), headers=brand.ingest)).json()

    changed = await client.patch(f"/api/v1/people/{person['person_id']}", headers=brand.reviewer,
                                 json={"display_name": "  Ana Lima ", "do_not_reply": True})
    blank = await client.patch(f"/api/v1/people/{person['person_id']}", headers=brand.reviewer,
                               json={"display_name": "   "})

    assert changed.status_code == 200, changed.text
    assert (changed.json()["display_name"], changed.json()["do_not_reply"]) == ("Ana Lima", True)
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "display_name"
    events = await db.run_read(lambda conn: conn.execute(
        select(AuditEvent.action, AuditEvent.data).where(AuditEvent.subject_id == person["person_id"],
                                                         AuditEvent.subject_type == "person")).all())
    assert [(a, d) for a, d in events] == [("person.updated", {"display_name": "Ana Lima", "do_not_reply": True})]


async def test_a_revoked_key_reads_no_history_after_the_cache_ttl_and_at_once_in_the_revoking_process(
        client, app, factory, db) -> None:
    """What a revoked key gets: each process caches a key for ``ttl`` (2 s), so a key revoked by another process
    (the command line) still reads for at most that long, then 401; the process that revoked it forgets at once."""
    brand = await factory.brand()
    person = (await client.post("/api/v1/mentions", json=mention(), headers=brand.ingest)).json()["person_id"]
    authenticator = app_services(app).authenticator
    for forget in (False, True):
        issued = await db.run_write(auth.create_api_key, brand.id, ["read"])
        headers = {"Authorization": f"Bearer {issued.token}"}
        assert (await client.get(f"/api/v1/people/{person}/history", headers=headers)).status_code == 200
        await db.run_write(auth.revoke_api_key, brand.id, issued.id)
        if forget:
            authenticator.forget()
        else:
            assert (await client.get(f"/api/v1/people/{person}/history", headers=headers)).status_code == 200
            await asyncio.sleep(authenticator.ttl)
        refused = await client.get(f"/api/v1/people/{person}/history", headers=headers)
        assert refused.status_code == 401 and "items" not in refused.text
