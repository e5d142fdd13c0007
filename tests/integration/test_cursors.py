"""Every list that pages by cursor, on the API and on the pages, answers a cursor it did not issue with a 422
problem on the ``cursor`` field (the pages: the first page), never a 500: a time without a zone, a time out of
range, an id past 64 bits, ``[true]``, garbage."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from tests.integration.test_web import sign_in
from tests.support.factories import mention

GOOD_TIME = "2026-11-20T12:00:00+00:00"


def encoded(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# What each list's cursor holds: (time, id), (time, rank, id) or (id,).
SHAPES = {"time": [GOOD_TIME, 1], "history": [GOOD_TIME, 1, 1], "id": [1]}


def bad_cursors(shape: str) -> dict[str, str]:
    good = SHAPES[shape]
    bad = {
        "[true]": encoded([True]),
        "garbage": "garbage!",
        "not JSON": base64.urlsafe_b64encode(b"[1,").decode(),
        "huge id": encoded(good[:-1] + [2**64]),
        "id zero": encoded(good[:-1] + [0]),
        "wrong arity": encoded(good + [1]),
    }
    if shape != "id":
        bad["time without zone"] = encoded(["2026-11-20T12:00:00"] + good[1:])
        bad["time out of range"] = encoded(["0001-01-01T00:00:00+05:00"] + good[1:])
        bad["time not a time"] = encoded([12] + good[1:])
    return bad


def api_cases() -> list[Any]:
    lists = [("/api/v1/people", "id", "read"), ("/api/v1/people/{person}/history", "history", "read"),
             ("/api/v1/turns", "time", "reviewer"), ("/api/v1/replies?status=approved", "time", "outbox")]
    return [pytest.param(path, key, cursor, id=f"{path.split('?')[0]} {kind}")
            for path, shape, key in lists for kind, cursor in bad_cursors(shape).items()]


def page_cases() -> list[Any]:
    pages = [("/", "time"), ("/audit", "time"), ("/people/{person}", "history")]
    return [pytest.param(path, cursor, id=f"{path} {kind}") for path, shape in pages
            for kind, cursor in bad_cursors(shape).items()]


@pytest.fixture
async def kit_with_person(client: Any, factory: Any) -> tuple[Any, int]:
    kit = await factory.brand()
    accepted = await client.post("/api/v1/mentions", json=mention(), headers=kit.ingest)
    assert accepted.status_code == 202, accepted.text
    return kit, accepted.json()["person_id"]


@pytest.mark.parametrize("path, key, cursor", api_cases())
async def test_an_api_list_answers_a_foreign_cursor_with_422_on_the_cursor_field(client, kit_with_person, path, key,
                                                                                 cursor) -> None:
    kit, person = kit_with_person
    separator = "&" if "?" in path else "?"
    response = await client.get(f"{path.format(person=person)}{separator}cursor={cursor}", headers=getattr(kit, key))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["cursor"]


@pytest.mark.parametrize("path, cursor", page_cases())
async def test_a_page_answers_a_foreign_cursor_with_its_first_page(client, kit_with_person, path, cursor) -> None:
    kit, person = kit_with_person
    await sign_in(client, kit.reviewer_email, kit.password)
    first = await client.get(path.format(person=person))
    response = await client.get(f"{path.format(person=person)}?cursor={cursor}")
    assert first.status_code == 200
    assert response.status_code == 200, response.text
    assert _comparable(response.text) == _comparable(first.text) or "expired" in response.text


def _comparable(html: str) -> str:
    """The page without what differs between two renders of it: the CSRF token, the current URL, and the
    figures of relative times ("3 s ago")."""
    return re.sub(r'name="_csrf_token" value="[^"]+"|cursor=[^"&]*|\d+', "", html)
