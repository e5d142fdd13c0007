"""Ingest (SPEC 5, issue 2's "Bad input" list): every bad request gets its precise status, a problem body that
names the field, and stores nothing; good ones are stored exactly and placed in the right turn (SPEC 3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from assistant.app import create_app
from assistant.auth import service as auth
from assistant.db import Database
from assistant.db.jobs import Job
from assistant.db.people import Handle, Interaction, Person
from assistant.db.turns import Turn
from assistant.services import app_services
from tests.support import turn_states
from tests.support.db import one, scalar
from tests.support.factories import mention


async def rows(db: Database, model: Any = Interaction) -> int:
    return int(await scalar(db, select(func.count()).select_from(model)) or 0)


async def nothing_stored(db: Database) -> None:
    for model in (Interaction, Person, Handle, Turn, Job):
        assert await rows(db, model) == 0, f"{model.__tablename__} has rows"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


# ---------------------------------------------------------------------------------------------- bad input

async def test_malformed_json_is_400(client, factory, db) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", content=b'{"platform": "x", "text": ',
                                 headers=brand.ingest | {"Content-Type": "application/json"})
    problem(response, 400)
    await nothing_stored(db)


@pytest.mark.parametrize("change, field", [
    ({"text": 42}, "text"),
    ({"platform": ["x"]}, "platform"),
    ({"author": {"handle": 7}}, "author.handle"),
    ({"author": {"handle": "@ana", "followers": "many"}}, "author.followers"),
    ({"author": {"handle": "@ana", "followers": -1}}, "author.followers"),
    ({"external_id": None}, "external_id"),
    ({"external_id": 119239}, "external_id"),
    ({"created_at": [2017, 10, 11]}, "created_at"),
    ({"created_at": True}, "created_at"),
])
async def test_wrong_types_are_422_naming_the_field(client, factory, db, change, field) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention() | change, headers=brand.ingest)
    assert field in fields(problem(response, 422))
    await nothing_stored(db)


@pytest.mark.parametrize("missing", ["platform", "external_id", "text", "created_at", "author"])
async def test_missing_required_fields_are_422(client, factory, db, missing) -> None:
    brand = await factory.brand()
    body = mention()
    del body[missing]
    response = await client.post("/api/v1/mentions", json=body, headers=brand.ingest)
    assert fields(problem(response, 422)) == [missing]
    await nothing_stored(db)


async def test_missing_author_handle_is_422(client, factory, db) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(author={"display_name": "Ana"}),
                                 headers=brand.ingest)
    assert fields(problem(response, 422)) == ["author.handle"]
    await nothing_stored(db)


@pytest.mark.parametrize("change, field", [({"mood": "grumpy"}, "mood"),
                                           ({"author": {"handle": "@ana", "age": 3}}, "author.age")])
async def test_unknown_fields_are_422(client, factory, db, change, field) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(**change), headers=brand.ingest)
    assert fields(problem(response, 422)) == [field]
    await nothing_stored(db)


@pytest.mark.parametrize("text", ["", "   \n ", "x" * 10_001])
async def test_empty_blank_or_too_long_text_is_422(client, factory, db, text) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(text=text), headers=brand.ingest)
    assert fields(problem(response, 422)) == ["text"]
    await nothing_stored(db)


async def test_created_at_as_unix_seconds_is_read_as_utc(client, factory, db) -> None:
    """Litestar converts in msgspec's lax mode, which reads a number as Unix seconds; that is a safe reading."""
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention() | {"created_at": 1507726809},
                                 headers=brand.ingest)
    assert response.status_code == 202
    got = await client.get(f"/api/v1/mentions/{response.json()['id']}", headers=brand.read)
    assert got.json()["created_at"].startswith("2017-10-11T13:00:09")


async def test_text_of_exactly_10000_characters_is_accepted(client, factory, db) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(text="é" * 10_000), headers=brand.ingest)
    assert response.status_code == 202
    assert await scalar(db, select(Interaction.text)) == "é" * 10_000


@pytest.mark.parametrize("created_at", ["yesterday", "2026-13-01T00:00:00Z", "2026-02-30T10:00:00Z", "",
                                        "2999-01-01T00:00:00Z"])
async def test_invalid_dates_are_422(client, factory, db, created_at) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention() | {"created_at": created_at},
                                 headers=brand.ingest)
    assert fields(problem(response, 422)) == ["created_at"]
    await nothing_stored(db)


async def test_body_of_two_mebibytes_is_413(client, factory, db) -> None:
    brand = await factory.brand()
    body = json.dumps(mention(text="x" * (2 * 1024 * 1024))).encode()
    response = await client.post("/api/v1/mentions", content=body,
                                 headers=brand.ingest | {"Content-Type": "application/json"})
    problem(response, 413)
    batch = json.dumps({"mentions": [mention(text="y" * 9000) for _ in range(240)]}).encode()
    assert len(batch) > 2 * 1024 * 1024
    response = await client.post("/api/v1/mentions/batch", content=batch,
                                 headers=brand.ingest | {"Content-Type": "application/json"})
    problem(response, 413)
    await nothing_stored(db)


@pytest.mark.parametrize("change, field", [({"text": "hi\u0000there"}, "text"),
                                           ({"author": {"handle": "@a\u0000b"}}, "author.handle"),
                                           ({"external_id": "1\u00002"}, "external_id")])
async def test_nul_bytes_are_422(client, factory, db, change, field) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(**change), headers=brand.ingest)
    assert fields(problem(response, 422)) == [field]
    await nothing_stored(db)


async def test_lone_surrogate_escape_is_400_saying_so(client, factory, db) -> None:
    brand = await factory.brand()
    body = json.dumps(mention(text="PLACEHOLDER")).replace("PLACEHOLDER", "bad \\ud800 half").encode()
    response = await client.post("/api/v1/mentions", content=body,
                                 headers=brand.ingest | {"Content-Type": "application/json"})
    assert "surrogate" in problem(response, 400)["detail"]
    await nothing_stored(db)


async def test_invalid_utf8_is_400(client, factory, db) -> None:
    brand = await factory.brand()
    body = json.dumps(mention(text="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"\xff\xfe")
    response = await client.post("/api/v1/mentions", content=body,
                                 headers=brand.ingest | {"Content-Type": "application/json"})
    problem(response, 400)
    await nothing_stored(db)


@pytest.mark.parametrize("text", [
    "\u202eإلغاء الطلب\u202c من فضلك",                     # right-to-left override and Arabic
    "zero\u200bwidth\u200djoiner\ufeffbom",               # zero-width space, joiner, BOM
    "👩‍👩‍👧 family \U0001F1EF\U0001F1F5 flags",            # ZWJ sequences and regional indicators
    "line one\nline two\ttab",
])
async def test_unusual_text_is_stored_and_returned_exactly(client, factory, db, text) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(text=text), headers=brand.ingest)
    assert response.status_code == 202, response.text
    got = await client.get(f"/api/v1/mentions/{response.json()['id']}", headers=brand.read)
    assert got.json()["text"] == text
    assert await scalar(db, select(Interaction.text)) == text


async def test_script_in_text_is_stored_as_text_and_returned_intact_as_json(client, factory, db) -> None:
    brand = await factory.brand()
    text = '<script>alert("x")</script> & <b>bold</b>'
    response = await client.post("/api/v1/mentions", json=mention(text=text), headers=brand.ingest)
    assert response.status_code == 202
    got = await client.get(f"/api/v1/mentions/{response.json()['id']}", headers=brand.read)
    assert got.headers["content-type"].startswith("application/json")
    assert got.json()["text"] == text


@pytest.mark.parametrize("handle", ["<script>", "@ana<script>", "a b", '"ana"', "@", ""])
async def test_markup_or_spaces_in_a_handle_are_422(client, factory, db, handle) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(handle=handle), headers=brand.ingest)
    assert fields(problem(response, 422)) == ["author.handle"]
    await nothing_stored(db)


# ---------------------------------------------------------------------------------------------- auth

async def test_missing_unknown_malformed_or_revoked_key_is_401(client, app, factory, db) -> None:
    brand = await factory.brand()
    for headers in ({}, {"Authorization": "Bearer rak_nope_nothing"}, {"Authorization": "Basic Zm9vOmJhcg=="},
                    {"Authorization": "Bearer"}, {"Authorization": brand.ingest["Authorization"] + "x"}):
        response = await client.post("/api/v1/mentions", json=mention(), headers=headers)
        problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    issued = await db.run_write(auth.create_api_key, brand.id, ["ingest"])
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert (await client.post("/api/v1/mentions", json=mention(), headers=headers)).status_code == 202
    await db.run_write(auth.revoke_api_key, brand.id, issued.id)
    app_services(app).authenticator.forget()  # keys are cached for 2 s per process; the revoking process forgets at once
    problem(await client.post("/api/v1/mentions", json=mention(), headers=headers), 401)
    assert await rows(db) == 1


@pytest.mark.parametrize("key", ["read", "outbox", "reviewer", "admin"])
async def test_a_key_of_the_wrong_scope_is_403(client, factory, db, key) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(), headers=getattr(brand, key))
    problem(response, 403)
    response = await client.post("/api/v1/mentions/batch", json={"mentions": [mention()]}, headers=getattr(brand, key))
    problem(response, 403)
    await nothing_stored(db)


async def test_ingest_key_cannot_read(client, factory) -> None:
    brand = await factory.brand()
    accepted = (await client.post("/api/v1/mentions", json=mention(), headers=brand.ingest)).json()
    problem(await client.get(f"/api/v1/mentions/{accepted['id']}", headers=brand.ingest), 403)


async def test_another_brands_ids_are_404(client, factory) -> None:
    mine, theirs = await factory.brand(), await factory.brand()
    accepted = (await client.post("/api/v1/mentions", json=mention(), headers=theirs.ingest)).json()
    for path in (f"/api/v1/mentions/{accepted['id']}", f"/api/v1/people/{accepted['person_id']}",
                 f"/api/v1/people/{accepted['person_id']}/history"):
        problem(await client.get(path, headers=mine.read), 404)
        assert (await client.get(path, headers=theirs.read)).status_code == 200
    problem(await client.get("/api/v1/mentions/999999", headers=mine.read), 404)
    found = await client.get("/api/v1/people", params={"platform": "x", "handle": "ana"}, headers=mine.read)
    assert found.json()["items"] == []


async def test_same_external_id_in_two_brands_is_two_mentions(client, factory, db) -> None:
    one, two = await factory.brand(), await factory.brand()
    a = await client.post("/api/v1/mentions", json=mention("same"), headers=one.ingest)
    b = await client.post("/api/v1/mentions", json=mention("same"), headers=two.ingest)
    assert a.status_code == b.status_code == 202
    assert a.json()["person_id"] != b.json()["person_id"]
    assert await rows(db) == 2


# ---------------------------------------------------------------------------------------------- duplicates

async def test_the_same_mention_again_is_200_with_the_same_ids(client, factory, db) -> None:
    brand = await factory.brand()
    body = mention("42")
    first = await client.post("/api/v1/mentions", json=body, headers=brand.ingest)
    again = await client.post("/api/v1/mentions", json=body | {"text": "edited later"}, headers=brand.ingest)
    assert first.status_code == 202 and again.status_code == 200
    assert first.json() | {"duplicate": True} == again.json()
    assert first.json()["status"] == "drafting" and first.json()["duplicate"] is False
    assert await rows(db) == 1 and await rows(db, Turn) == 1 and await rows(db, Job) == 1


async def test_the_same_mention_twenty_times_at_once_is_stored_once(client, factory, db) -> None:
    brand = await factory.brand()
    body = mention("race-1", handle="@racer")
    responses = await asyncio.gather(*(client.post("/api/v1/mentions", json=body, headers=brand.ingest)
                                       for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [202]
    ids = {(r.json()["id"], r.json()["turn_id"], r.json()["person_id"]) for r in responses}
    assert len(ids) == 1
    assert sum(r.json()["duplicate"] for r in responses) == 19
    assert await rows(db) == 1 and await rows(db, Person) == 1 and await rows(db, Turn) == 1
    person = await one(db, select(Person))
    assert person.mention_count == 1


async def test_twenty_different_mentions_at_once_from_one_person_share_a_turn(client, factory, db) -> None:
    brand = await factory.brand()
    responses = await asyncio.gather(*(client.post("/api/v1/mentions", json=mention(f"m{n}", handle="@same"),
                                                   headers=brand.ingest) for n in range(20)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["turn_id"] for r in responses}) == 1
    assert len({r.json()["person_id"] for r in responses}) == 1
    assert await rows(db) == 20 and await rows(db, Person) == 1 and await rows(db, Turn) == 1


# ---------------------------------------------------------------------------------------------- batches

async def test_batch_answers_item_by_item(client, factory, db) -> None:
    brand = await factory.brand()
    seen = await client.post("/api/v1/mentions", json=mention("old"), headers=brand.ingest)
    items = [mention("b1", handle="@one"), mention("b2", text=""), mention("old"), {"platform": "x"},
             mention("b1", handle="@one"), mention("b3", handle="<b>"), "not an object", mention("b4", handle="@two")]
    response = await client.post("/api/v1/mentions/batch", json={"mentions": items}, headers=brand.ingest)
    assert response.status_code == 422 or response.status_code == 200
    if response.status_code == 422:  # a non-object item fails the envelope: try without it
        assert "mentions" in fields(response.json())[0]
        items.remove("not an object")
        response = await client.post("/api/v1/mentions/batch", json={"mentions": items}, headers=brand.ingest)
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == ["accepted", "invalid", "duplicate", "invalid", "duplicate", "invalid",
                                              "accepted"]
    assert results[1]["errors"][0]["field"] == "text"
    assert {e["field"] for e in results[3]["errors"]} <= {"external_id", "text", "created_at", "author"}
    assert results[5]["errors"][0]["field"] == "author.handle"
    assert results[2]["id"] == seen.json()["id"]
    assert results[4]["id"] == results[0]["id"]
    assert await rows(db) == 3


@pytest.mark.parametrize("count", [0, 1001])
async def test_batch_of_0_or_1001_is_422(client, factory, db, count) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions/batch", json={"mentions": [mention() for _ in range(count)]},
                                 headers=brand.ingest)
    assert fields(problem(response, 422)) == ["mentions"]
    await nothing_stored(db)


async def test_batch_of_1000_is_accepted(client, factory, db) -> None:
    brand = await factory.brand()
    items = [mention(f"k{n}", handle=f"@p{n % 50}") for n in range(1000)]
    response = await client.post("/api/v1/mentions/batch", json={"mentions": items}, headers=brand.ingest)
    assert response.status_code == 200
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}
    assert await rows(db) == 1000 and await rows(db, Person) == 50 and await rows(db, Turn) == 50


@pytest.mark.parametrize("body", [b"[]", b'{"mentions": "x"}', b'{"mentions": [], "extra": 1}', b"null"])
async def test_batch_envelope_of_the_wrong_shape_is_422(client, factory, db, body) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/mentions/batch", content=body,
                                 headers=brand.ingest | {"Content-Type": "application/json"})
    problem(response, 422)
    await nothing_stored(db)


# ---------------------------------------------------------------------------------------------- SPEC 3 turns

async def post(client: AsyncTestClient, brand: Any, external_id: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/mentions", json=mention(external_id, **extra), headers=brand.ingest)
    assert response.status_code == 202, response.text
    return response.json()


async def test_same_conversation_id_joins_the_turn(client, factory) -> None:
    brand = await factory.brand()
    a = await post(client, brand, "1", conversation_id="c1")
    b = await post(client, brand, "2", conversation_id="c1")
    assert a["turn_id"] == b["turn_id"]


async def test_in_reply_to_into_a_conversation_joins_it(client, factory) -> None:
    brand = await factory.brand()
    a = await post(client, brand, "1", conversation_id="c1")
    b = await post(client, brand, "2", in_reply_to="1")
    assert a["turn_id"] == b["turn_id"]


async def test_no_conversation_joins_the_newest_open_turn(client, factory) -> None:
    brand = await factory.brand()
    await post(client, brand, "1", conversation_id="c1")
    newest = await post(client, brand, "2", conversation_id="c2")
    loose = await post(client, brand, "3")
    assert loose["turn_id"] == newest["turn_id"]


async def test_another_conversation_opens_a_new_turn(client, factory, db) -> None:
    brand = await factory.brand()
    a = await post(client, brand, "1", conversation_id="c1")
    b = await post(client, brand, "2", conversation_id="c2")
    other_person = await post(client, brand, "3", conversation_id="c1", handle="@bo")
    assert len({a["turn_id"], b["turn_id"], other_person["turn_id"]}) == 3
    assert await rows(db, Turn) == 3


async def test_a_decided_turn_is_not_joined(client, factory, db) -> None:
    brand = await factory.brand()
    a = await post(client, brand, "1", conversation_id="c1")
    await turn_states.reach(db, a["turn_id"], "approved", brand.reviewer_id)
    b = await post(client, brand, "2", conversation_id="c1")
    assert b["turn_id"] != a["turn_id"]


async def test_do_not_reply_person_is_skipped(client, factory, db) -> None:
    brand = await factory.brand()
    first = await post(client, brand, "1", handle="@quiet")
    patched = await client.patch(f"/api/v1/people/{first['person_id']}", json={"do_not_reply": True},
                                 headers=brand.reviewer)
    assert patched.status_code == 200
    jobs_before = await rows(db, Job)
    later = await post(client, brand, "2", handle="@QUIET", conversation_id="other")
    assert later["status"] == "skipped" and later["person_id"] == first["person_id"]
    assert await rows(db, Job) == jobs_before


async def test_handles_match_case_insensitively_without_the_at(client, factory, db) -> None:
    brand = await factory.brand()
    a = await post(client, brand, "1", handle="@Ana")
    b = await post(client, brand, "2", handle="ana")
    c = await post(client, brand, "3", handle="ANA")
    assert a["person_id"] == b["person_id"] == c["person_id"]
    assert await rows(db, Person) == 1


# ---------------------------------------------------------------------------------------------- rate limit, ops

async def test_rate_limit_is_429_with_retry_after(settings, factory) -> None:
    app = create_app(settings.replace(rate_limit_per_minute=20))
    async with AsyncTestClient(app) as client:
        database = Database(settings.database_url)
        try:
            brand = await type(factory)(database).brand()
        finally:
            await database.dispose()
        answers = [await client.get("/api/v1/people", headers=brand.read) for _ in range(4)]
        assert [r.status_code for r in answers[:2]] == [200, 200]
        limited = answers[-1]
        problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        # Another key has its own bucket.
        assert (await client.get("/api/v1/people", headers=brand.reviewer)).status_code == 200


async def test_healthz_readyz_metrics(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "assistant_turns" in metrics.text


async def test_openapi_lists_every_operation(client, app) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()
                  if isinstance(op, dict) and "operationId" in op}
    assert {"createMention", "createMentionBatch", "getMention", "importHistory", "listPeople", "getPerson",
            "getPersonHistory", "updatePerson", "addPersonNote", "mergePeople", "healthz", "readyz",
            "metrics"} <= operations
    handlers = {route.handler_name for route in app.routes for route in getattr(route, "route_handlers", [])}
    assert handlers


async def test_unknown_route_and_method_are_problems(client, factory) -> None:
    brand = await factory.brand()
    problem(await client.get("/api/v1/nothing-here", headers=brand.read), 404)
    problem(await client.delete("/api/v1/mentions", headers=brand.ingest), 405)
