"""Issue 13, finding 1: hostile input gets a precise 4xx, never a 500, and a bad batch item never sinks the rest.

What each kind of bad input gets:
- a path id beyond the database's 64-bit integers (API and pages): 404, it names nothing;
- JSON nested deeper than ``MAX_JSON_DEPTH`` on any JSON endpoint, with or without a token: 400, nothing logged;
- out-of-range numbers or times in a mention: 422 for a single mention, ``invalid`` with the reason for that
  batch item (the valid ones are stored), an invalid line for history import;
- an out-of-range date on the fairness page: the default period and a message, 200.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from assistant.db.people import Interaction
from assistant.http import MAX_JSON_DEPTH
from tests.integration.test_web import sign_in
from tests.support.db import scalar
from tests.support.factories import mention

HUGE = 2**63
API_ID_ROUTES = [
    ("GET", "/api/v1/mentions/{id}", "read"),
    ("GET", "/api/v1/people/{id}", "read"),
    ("GET", "/api/v1/people/{id}/history", "read"),
    ("PATCH", "/api/v1/people/{id}", "reviewer"),
    ("POST", "/api/v1/people/{id}/notes", "reviewer"),
    ("POST", "/api/v1/people/{id}/merge", "admin"),
    ("GET", "/api/v1/turns/{id}", "reviewer"),
    ("POST", "/api/v1/turns/{id}/approve", "reviewer"),
    ("POST", "/api/v1/turns/{id}/reject", "reviewer"),
    ("POST", "/api/v1/turns/{id}/escalate", "reviewer"),
    ("POST", "/api/v1/turns/{id}/regenerate", "reviewer"),
    ("POST", "/api/v1/replies/{id}/posted", "outbox"),
    ("POST", "/api/v1/replies/{id}/failed", "outbox"),
    ("POST", "/api/v1/replies/{id}/renew", "outbox"),
]
PAGE_ID_ROUTES = ["/turns/{id}/history", "/people/{id}"]


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


async def stored_mentions(db: Any) -> int:
    return int(await scalar(db, select(func.count()).select_from(Interaction)) or 0)


@pytest.mark.parametrize("method,path,who", API_ID_ROUTES)
@pytest.mark.parametrize("value", [HUGE, 2**64 + 7, 10**30])
async def test_api_ids_beyond_64_bits_are_404(client, factory, method, path, who, value) -> None:
    kit = await factory.brand()
    response = await client.request(method, path.format(id=value), headers=getattr(kit, who), json={})
    problem(response, 404)


async def test_page_ids_beyond_64_bits_are_404(client, factory) -> None:
    kit = await factory.brand()
    assert (await sign_in(client, kit.reviewer_email, kit.password)).status_code == 303
    for path in PAGE_ID_ROUTES:
        response = await client.get(path.format(id=HUGE))
        assert response.status_code == 404, (path, response.text[:200])


@pytest.mark.parametrize("path", ["/api/v1/mentions", "/api/v1/mentions/batch", "/api/v1/replies/claim",
                                  "/api/v1/people/1/notes", "/api/v1/turns/1/approve"])
@pytest.mark.parametrize("authorised", [False, True])
async def test_deep_json_is_400_before_anything_with_or_without_a_token(client, factory, caplog, path,
                                                                         authorised) -> None:
    kit = await factory.brand()
    headers = (kit.admin if "people" in path or "turns" in path else kit.ingest if "mentions" in path
               else kit.outbox) if authorised else {}
    body = b'{"mentions": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with caplog.at_level(logging.ERROR, logger="assistant"):
        response = await client.post(path, content=body, headers=headers | {"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "nest" in response.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_json_at_the_depth_limit_is_read(client, factory) -> None:
    kit = await factory.brand()
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    response = await client.post("/api/v1/mentions", content=f'{{"text": {nested}}}'.encode(),
                                 headers=kit.ingest | {"Content-Type": "application/json"})
    assert problem(response, 422)["errors"][0]["field"] == "text"


OUT_OF_RANGE = [
    ({"author": {"handle": "@ana", "followers": 2**63}}, "author.followers"),
    ({"author": {"handle": "@ana", "followers": 2**31}}, "author.followers"),
    ({"created_at": "0001-01-01T00:00:00+14:00"}, "created_at"),
    ({"created_at": "9999-12-31T23:59:59-14:00"}, "created_at"),
    ({"created_at": "1900-01-01T00:00:00Z"}, "created_at"),
]


@pytest.mark.parametrize("override,field", OUT_OF_RANGE)
async def test_out_of_range_single_mention_is_422_and_stores_nothing(client, factory, db, override, field) -> None:
    kit = await factory.brand()
    response = await client.post("/api/v1/mentions", json=mention(**override), headers=kit.ingest)
    assert field in [e["field"] for e in problem(response, 422)["errors"]]
    assert await stored_mentions(db) == 0


@pytest.mark.parametrize("override,field", OUT_OF_RANGE)
async def test_out_of_range_batch_item_is_invalid_and_the_others_are_stored(client, factory, db, override,
                                                                            field) -> None:
    kit = await factory.brand()
    items = [mention(handle="@first"), mention(**override), mention(handle="@third")]
    response = await client.post("/api/v1/mentions/batch", json={"mentions": items}, headers=kit.ingest)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "invalid", "accepted"]
    assert field in [e["field"] for e in results[1]["errors"]]
    assert await stored_mentions(db) == 2


@pytest.mark.parametrize("override,field", OUT_OF_RANGE)
async def test_out_of_range_import_line_is_invalid_and_the_others_are_imported(client, factory, db, override,
                                                                              field) -> None:
    kit = await factory.brand()
    import json
    good = mention(handle="@first") | {"direction": "inbound"}
    bad = mention(**override) | {"direction": "inbound"}
    body = "\n".join(json.dumps(line) for line in (good, bad)).encode()
    response = await client.post("/api/v1/history/import", content=body,
                                 headers=kit.ingest | {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["imported"] == 1
    assert [i["line"] for i in answer["invalid"]] == [2]
    assert field in [e["field"] for e in answer["invalid"][0]["errors"]]


async def test_posted_at_out_of_range_is_422(client, factory, db) -> None:
    from tests.support.outbox_helpers import approved_replies

    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    claim = await client.post("/api/v1/replies/claim", json={"limit": 1, "lease_seconds": 60}, headers=kit.outbox)
    item = claim.json()["items"][0]
    body = {"external_id": "p1", "posted_at": "0001-01-01T00:00:00+14:00", "claim_token": item["claim_token"]}
    response = await client.post(f"/api/v1/replies/{reply_id}/posted", json=body, headers=kit.outbox)
    assert "posted_at" in [e["field"] for e in problem(response, 422)["errors"]]


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01", "since=0001-01-01&until=9999-12-31",
                                   "until=99999-01-01"])
async def test_fairness_dates_at_the_ends_of_the_calendar_get_the_default_period(client, factory, query) -> None:
    kit = await factory.brand()
    await sign_in(client, kit.reviewer_email, kit.password)
    response = await client.get(f"/fairness?{query}")
    assert response.status_code == 200, response.text[:300]
    assert "showing the default period" in response.text


async def test_a_megabyte_of_bad_import_lines_gets_a_small_answer_with_a_count(client, factory) -> None:
    """Issue 13, finding 6: the first invalid lines are reported, the rest counted (1 MB made a 48 MB answer)."""
    from assistant.people.importer import KEPT_INVALID

    kit = await factory.brand()
    line = b'{"direction": "inbound", "platform": "x", "unknown": [' + b"1," * 40 + b'1]}\n'
    body = line * (1_000_000 // len(line))
    response = await client.post("/api/v1/history/import", content=body,
                                 headers=kit.ingest | {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text[:300]
    answer = response.json()
    lines = body.count(b"\n")
    assert answer["invalid_count"] == lines and len(answer["invalid"]) == KEPT_INVALID
    assert [i["line"] for i in answer["invalid"]] == list(range(1, KEPT_INVALID + 1))
    assert len(response.content) < 50_000


@pytest.mark.parametrize("bad", [
    pytest.param(b'{"direction": "' + b"A" * 4000 + b'"}', id="a long enum value"),
    pytest.param(b'{"' + b"k" * 4000 + b'": 1}', id="a long unknown field"),
])
async def test_errors_that_quote_the_line_are_cut_so_the_answer_stays_small(client, factory, bad) -> None:
    """msgspec quotes what it refuses: 100 kept errors of 4 KB each would be a 400 KB answer."""
    from assistant.problems import ECHO_MAX_CHARS

    kit = await factory.brand()
    body = (bad + b"\n") * (1_000_000 // (len(bad) + 1))
    response = await client.post("/api/v1/history/import", content=body,
                                 headers=kit.ingest | {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text[:300]
    answer = response.json()
    assert answer["invalid_count"] == body.count(b"\n") and answer["imported"] == 0
    assert all(len(e["field"]) <= ECHO_MAX_CHARS and len(e["message"]) <= ECHO_MAX_CHARS
               for i in answer["invalid"] for e in i["errors"])
    assert len(response.content) < 50_000


async def test_an_import_body_is_read_a_chunk_at_a_time_and_never_held_whole(db, factory) -> None:
    """The endpoint parses lines as the body arrives: a megabyte of bad lines, with good ones among them and
    lines cut across chunks, costs far less memory than the body itself."""
    import json
    import tracemalloc

    from assistant.people.importer import KEPT_INVALID, import_ndjson_stream

    kit = await factory.brand()
    bad = b'{"direction": "inbound", "platform": "x", "unknown": [' + b"1," * 40 + b'1]}'

    def good(n: int) -> bytes:
        return json.dumps({"direction": "inbound", "platform": "x", "external_id": f"g{n}", "text": "hello",
                           "created_at": "2019-05-01T10:00:00Z", "author": {"handle": f"@p{n}"}}).encode()

    lines = [good(n) if n % 1000 == 0 else bad for n in range(1_000_000 // len(bad))]
    body = b"\n".join(lines)
    chunk = 7001  # not a multiple of any line: lines are cut across chunks

    async def arriving() -> Any:
        for start in range(0, len(body), chunk):
            yield body[start:start + chunk]

    await import_ndjson_stream(db, kit.id, arriving())  # statements compiled and cached before measuring
    tracemalloc.start()
    try:
        answer = await import_ndjson_stream(db, kit.id, arriving())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    goods = sum(1 for n in range(len(lines)) if n % 1000 == 0)
    assert (answer.imported, answer.duplicates) == (0, goods)  # the first run stored them
    assert answer.invalid_count == len(lines) - goods and len(answer.invalid) == KEPT_INVALID
    assert [i.line for i in answer.invalid[:3]] == [2, 3, 4]
    assert peak < len(body) // 2, f"peak {peak:,} bytes for a body of {len(body):,}"
