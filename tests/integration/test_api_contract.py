"""Issue 13, finding 7: the published OpenAPI matches the service, and no input makes it answer 500.

- schemathesis generates requests from ``/schema/openapi.json`` for every operation (a bounded, seeded number
  each) and checks every answer against the document: no server error, every status documented, bodies and
  content types as documented, auth enforced. Not checked: "a schema-valid request is accepted", since the
  service has rules a JSON schema cannot state (a lowercase platform token, a time at most a day ahead, a
  handle of one word) and answers those with 422 as documented.
- a seeded fuzz run sends hostile values (huge and negative ids, deep nesting, calendar ends, wrong types,
  control characters, long strings) to every operation of the document and fails on any 5xx other than a
  503 with Retry-After.
"""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
import schemathesis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from assistant.app import create_app
from assistant.auth import service as auth
from tests.support.factories import mention

EXAMPLES_PER_OPERATION = 20
FUZZ_PER_OPERATION = 30
METRICS_TOKEN = "metrics-token-for-tests"
USER_PATHS = ("/api/v1/turns", "/api/v1/reviewer-tokens")


@pytest.fixture
async def world(settings, factory, db) -> dict[str, Any]:
    """An app whose document is checked, a brand with a key of every scope and an admin, and a few rows
    (a mention, its person and turn) so that small ids name something."""
    kit = await factory.brand()
    key = await db.run_write(auth.create_api_key, kit.id, ["ingest", "outbox", "read"])
    app = create_app(settings.replace(metrics_token=METRICS_TOKEN, auth_failures_per_address=1_000_000))
    async with AsyncTestClient(app) as client:
        answer = await client.post("/api/v1/mentions", json=mention(), headers=kit.ingest)
        assert answer.status_code == 202
    return {"app": app, "key": {"Authorization": f"Bearer {key.token}"}, "admin": kit.admin}


def headers_for(world: dict[str, Any], method: str, path: str) -> dict[str, str]:
    if path == "/metrics":
        return {"Authorization": f"Bearer {METRICS_TOKEN}"}
    if path.startswith(USER_PATHS) or (path.startswith("/api/v1/people") and method.upper() != "GET"):
        return world["admin"]
    return world["key"]


def test_schemathesis_finds_no_server_error_and_no_mismatch_with_the_document(world) -> None:
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", world["app"])
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def check(case: Any) -> None:
            try:
                case.call_and_validate(headers=headers_for(world, case.method, case.path),
                                       excluded_checks=[schemathesis.checks.positive_data_acceptance])
            except BaseException as found:  # schemathesis raises a group of failures
                if len(failures) < 20:
                    failures.append(f"{operation.label}: {str(found)[:1500]}")

        check()
    assert not failures, "\n\n".join(failures)


HOSTILE_IDS = ["-1", "0", str(2**63), str(2**64 + 1), "9" * 40, "1e3", "%00", "1.5"]
HOSTILE_SCALARS: list[Any] = [
    None, True, -1, 0, 2**63, -(2**63) - 1, 2**64, 1e308, -0.0, "", " ", "\x00", "a\u0000b", "\ud800", "\u202e",
    "x" * 20_000, "<script>alert(1)</script>", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "2026-13-45T99:99:99Z", [], {}, [None], {"$ne": 1}, "' OR 1=1 --", "../../etc/passwd",
]


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def hostile_body(rng: random.Random, schema: dict[str, Any] | None, components: dict[str, Any]) -> Any:
    """A body shaped like the operation's, with some fields swapped for hostile values (or a hostile whole)."""
    roll = rng.random()
    if roll < 0.1:
        return deep(rng.choice([40, 500, 5000]))
    if roll < 0.2:
        return rng.choice(HOSTILE_SCALARS)
    shape = resolve(schema or {}, components)
    body: dict[str, Any] = {}
    for name, field in (shape.get("properties") or {}).items():
        field = resolve(field, components)
        if rng.random() < 0.4:
            body[name] = rng.choice(HOSTILE_SCALARS)
        elif field.get("type") == "object" or "properties" in field:
            body[name] = hostile_body(rng, field, components)
        elif field.get("type") == "array":
            body[name] = [hostile_body(rng, resolve(field.get("items") or {}, components), components)
                          for _ in range(rng.choice([0, 1, 3]))]
        else:
            body[name] = rng.choice(HOSTILE_SCALARS)
    if rng.random() < 0.2:
        body["unknown_field"] = rng.choice(HOSTILE_SCALARS)
    return body


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return components.get(ref.rsplit("/", 1)[-1], {})
    return schema


async def test_seeded_hostile_values_on_every_operation_never_get_a_server_error(world) -> None:
    rng = random.Random(13)
    async with AsyncTestClient(world["app"]) as client:
        document = (await client.get("/schema/openapi.json")).json()
        components = document["components"]["schemas"]
        errors: list[str] = []
        sent = 0
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                body_schema = (((operation.get("requestBody") or {}).get("content") or {})
                               .get("application/json") or {}).get("schema")
                for _ in range(FUZZ_PER_OPERATION):
                    url = path
                    for parameter in operation.get("parameters", []):
                        if parameter["in"] == "path":
                            url = url.replace("{" + parameter["name"] + "}", rng.choice(HOSTILE_IDS + ["1"]))
                    query = "&".join(
                        f"{p['name']}={quote(str(rng.choice(HOSTILE_SCALARS))[:3000].encode('utf-8', 'surrogatepass'))}"
                        for p in operation.get("parameters", []) if p["in"] == "query" and rng.random() < 0.7)
                    url += f"?{query}" if query else ""
                    content = None
                    if operation.get("requestBody"):
                        body = hostile_body(rng, body_schema, components)
                        try:
                            content = json.dumps(body).encode()
                        except (ValueError, RecursionError):
                            content = b"[" * 5000
                    response = await client.request(
                        method.upper(), url, content=content,
                        headers=headers_for(world, method, path) | ({"Content-Type": "application/json"}
                                                                     if content is not None else {}))
                    sent += 1
                    ok = response.status_code < 500 or (response.status_code == 503
                                                        and "retry-after" in response.headers)
                    if not ok:
                        errors.append(f"{method.upper()} {url} -> {response.status_code}: "
                                      f"{(content or b'')[:300]!r} {response.text[:300]}")
        assert sent >= 20 * FUZZ_PER_OPERATION
        assert not errors, "\n".join(errors[:20])


def test_the_document_lists_problem_answers_unknown_fields_and_public_operations(world) -> None:
    app: Litestar = world["app"]
    document = app.openapi_schema.to_schema()
    create = document["paths"]["/api/v1/mentions"]["post"]
    assert {"200", "202", "400", "401", "403", "413", "422", "429", "503"} <= set(create["responses"])
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert "Retry-After" in create["responses"]["429"]["headers"]
    for action in ("posted", "failed", "renew"):
        answers = document["paths"][f"/api/v1/replies/{{reply_id}}/{action}"]["post"]["responses"]
        assert {"200", "404", "409", "422"} <= set(answers), action
        assert "no longer this `claim_token`'s" in answers["409"]["description"], action
    schemas = document["components"]["schemas"]
    for name in ("PostedIn", "FailedIn", "RenewIn"):
        assert "claim_token" in schemas[name]["required"] and schemas[name]["additionalProperties"] is False
    assert {"minimum": 5, "maximum": 3600}.items() <= schemas["RenewIn"]["properties"]["lease_seconds"].items()
    assert {"claim_token", "lease_expires_at", "lease_until"} <= set(schemas["ClaimedReply"]["required"])
    assert schemas["Renewed"]["required"] == ["lease_expires_at"]
    assert document["components"]["schemas"]["MentionIn"]["additionalProperties"] is False
    assert document["paths"]["/healthz"]["get"]["security"] == []
