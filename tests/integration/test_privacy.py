"""Privacy requests (SPEC 12): an admin exports everything held about a person, or erases it everywhere.

The erasure test walks a person through the whole product first (mentions, a draft, an edited approval, a
posted reply, a note, a regeneration with guidance, a second waiting turn, webhook deliveries, the audit
log), erases them, and then reads every table of the database, on SQLite and PostgreSQL alike, for their
words, their name and their handle.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import Connection, func, inspect, select, text

from assistant.services import app_services
from assistant.db import Database
from assistant.db.audit import AuditEvent
from assistant.db.jobs import Job
from assistant.db.outbox import Reply
from assistant.db.people import Interaction
from assistant.db.turns import Turn
from assistant.db.webhooks import WebhookDelivery
from assistant.review.service import fairness
from assistant.webhooks import service as webhooks
from assistant.webhooks.events import EVENTS
from tests.support.db import scalar
from tests.support.factories import BrandKit, Factory
from tests.support.review_helpers import pending_turn, post_mention, store_draft

SECRET_WORD = "zanzibarquokka"
HANDLE = "quokkafan99"
NAME = "Quentin Quokkason"


async def _a_whole_relationship(client: AsyncTestClient, db: Database, kit: BrandKit) -> dict[str, Any]:
    """A person who has been through everything the product does, with their words in every place."""
    await webhooks.add_webhook(db, app_services(client.app).settings, kit.slug, "http://127.0.0.1:9/hook", list(EVENTS))
    author = {"handle": f"@{HANDLE}", "display_name": NAME, "followers": 1234}
    turn_id, draft_id = await pending_turn(client, db, kit, handle=f"@{HANDLE}", author=author,
                                           text=f"@acme my {SECRET_WORD} order is late", external_id="9001",
                                           draft_text=f"Hi Quentin, your {SECRET_WORD} ships today.")
    person_id = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["person"]["id"]
    regenerated = await client.post(f"/api/v1/turns/{turn_id}/regenerate", headers=kit.reviewer,
                                    json={"guidance": f"mention the {SECRET_WORD} tracking page"})
    assert regenerated.status_code == 202, regenerated.text
    draft_id = await store_draft(db, turn_id, f"Hi Quentin, the {SECRET_WORD} is on its way.")
    approved = await client.post(f"/api/v1/turns/{turn_id}/approve", headers=kit.reviewer,
                                 json={"draft_id": draft_id, "text": f"Hi Quentin, the {SECRET_WORD} left today."})
    assert approved.status_code == 200, approved.text
    claimed = (await client.post("/api/v1/replies/claim", headers=kit.outbox,
                                 json={"limit": 10, "lease_seconds": 60})).json()["items"]
    [reply] = [item for item in claimed if item["id"] == approved.json()["reply_id"]]
    posted = await client.post(f"/api/v1/replies/{reply['id']}/posted", headers=kit.outbox,
                               json={"external_id": "post-77", "claim_token": reply["claim_token"]})
    assert posted.status_code == 200, posted.text
    noted = await client.post(f"/api/v1/people/{person_id}/notes", headers=kit.reviewer,
                              json={"text": f"{NAME} collects {SECRET_WORD} mugs"})
    assert noted.status_code == 201, noted.text
    waiting = await post_mention(client, kit, handle=f"@{HANDLE}", author=author,
                                 text=f"@acme and the second {SECRET_WORD}?", external_id="9002")
    return {"person_id": person_id, "answered_turn": turn_id, "waiting_turn": waiting["turn_id"]}


def _every_cell(conn: Connection) -> list[tuple[str, str]]:
    """Every value of every table the database holds (not only the ones the models know), as text."""
    cells = []
    for table in inspect(conn).get_table_names():
        for row in conn.execute(text(f'SELECT * FROM "{table}"')):
            cells.extend((table, str(value)) for value in row if value is not None)
    return cells


async def test_an_erased_person_leaves_no_trace_in_any_table(client, db: Database, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person = await _a_whole_relationship(client, db, kit)
    before = await db.run_read(_every_cell)
    for needle in (SECRET_WORD, HANDLE, "Quokkason"):
        assert any(needle in value.lower() or needle.lower() in value.lower() for _, value in before), needle
    window = {"since": dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), "until": dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)}
    fair_before = await fairness(db, kit.id, **window)

    erased = await client.delete(f"/api/v1/people/{person['person_id']}", headers=kit.admin)

    assert erased.status_code == 202, erased.text
    assert erased.json()["status"] == "erased" and erased.json()["rows"]["interactions"] >= 3
    leftovers = [(table, value[:80]) for table, value in await db.run_read(_every_cell)
                 if any(n in value.lower() for n in (SECRET_WORD, HANDLE, "quokkason", "quentin"))]
    assert leftovers == []
    for path in (f"/api/v1/people/{person['person_id']}", f"/api/v1/people/{person['person_id']}/history",
                 f"/api/v1/people/{person['person_id']}/export"):
        gone = await client.get(path, headers=kit.admin)
        assert gone.status_code == 404, (path, gone.text)
    again = await client.delete(f"/api/v1/people/{person['person_id']}", headers=kit.admin)
    assert again.status_code == 404
    assert await fairness(db, kit.id, **window) == fair_before, "the fairness counts outlive the identity"


async def test_erasure_cancels_what_was_queued_for_the_person(client, db: Database, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person = await _a_whole_relationship(client, db, kit)

    assert (await client.delete(f"/api/v1/people/{person['person_id']}", headers=kit.admin)).status_code == 202

    def state(conn: Connection) -> dict[str, Any]:
        turns = [person["answered_turn"], person["waiting_turn"]]
        return {
            "statuses": dict(conn.execute(select(Turn.id, Turn.status).where(Turn.id.in_(turns))).all()),
            "queued_jobs": conn.execute(select(func.count()).select_from(Job).where(
                Job.subject_id.in_(turns), Job.kind == "draft_turn", Job.status == "queued")).scalar(),
            "recorded": conn.execute(select(AuditEvent.actor_label, AuditEvent.data).where(
                AuditEvent.action == "person.erased", AuditEvent.subject_id == person["person_id"])).all(),
            "events": [(d.event_type, d.status, d.payload) for d in conn.execute(
                select(WebhookDelivery).where(WebhookDelivery.brand_id == kit.id)
                .order_by(WebhookDelivery.id))],
        }

    after = await db.run_read(state)
    assert after["statuses"] == {person["answered_turn"]: "posted", person["waiting_turn"]: "skipped"}
    assert after["queued_jobs"] == 0
    [(who, data)] = after["recorded"]
    assert who == kit.admin_email and set(data) == {"rows"}, "the erasure is recorded, without content"
    *earlier, (last_type, last_status, last_payload) = after["events"]
    assert last_type == "person.erased" and last_status == "pending"
    assert last_payload["data"] == {"person_id": person["person_id"], "erased_at": last_payload["data"]["erased_at"]}
    assert earlier and all(payload == {"redacted": True} for _, _, payload in earlier)
    assert all(status != "pending" for _, status, _ in earlier), "no event about them is sent any more"
    queue = (await client.get("/api/v1/turns?status=pending_review", headers=kit.reviewer)).json()["items"]
    assert person["waiting_turn"] not in [t["id"] for t in queue]


@pytest.mark.parametrize("claimed", [False, True], ids=["approved", "claimed"])
async def test_erasure_withdraws_a_reply_to_the_person_not_posted_yet(client, db: Database, factory: Factory,  # type: ignore[no-untyped-def]
                                                                      claimed: bool) -> None:
    kit = await factory.brand()
    turn_id, draft_id = await pending_turn(client, db, kit, handle=f"@{HANDLE}", text=f"@acme my {SECRET_WORD}?")
    approved = await client.post(f"/api/v1/turns/{turn_id}/approve", headers=kit.reviewer, json={"draft_id": draft_id})
    assert approved.status_code == 200, approved.text
    reply_id = approved.json()["reply_id"]

    async def claim() -> list[dict[str, Any]]:
        answer = await client.post("/api/v1/replies/claim", headers=kit.outbox, json={"limit": 10, "lease_seconds": 60})
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]
    held = await claim() if claimed else []
    person_id = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["person"]["id"]

    assert (await client.delete(f"/api/v1/people/{person_id}", headers=kit.admin)).status_code == 202

    assert await scalar(db, select(Reply.status).where(Reply.id == reply_id)) == "failed"
    assert await claim() == [], "no outbox client is handed the reply any more"
    if claimed:
        posted = await client.post(f"/api/v1/replies/{reply_id}/posted", headers=kit.outbox,
                                   json={"external_id": "post-1", "claim_token": held[0]["claim_token"]})
        assert posted.status_code == 409, "nor can the one holding it confirm it"


async def test_a_handle_that_writes_again_after_erasure_is_a_new_person(client, db: Database, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    first = await post_mention(client, kit, handle="@comeback", external_id="500")
    assert (await client.delete(f"/api/v1/people/{first['person_id']}", headers=kit.admin)).status_code == 202

    resent = await post_mention(client, kit, handle="@comeback", external_id="500")

    assert resent["duplicate"] is False, "the old message id was erased with the person"
    assert resent["person_id"] != first["person_id"] and resent["turn_id"] != first["turn_id"]
    found = (await client.get("/api/v1/people?platform=x&handle=comeback", headers=kit.read)).json()["items"]
    assert [p["id"] for p in found] == [resent["person_id"]]
    stored = await db.run_read(lambda conn: conn.execute(
        select(func.count()).select_from(Interaction).where(Interaction.person_id == first["person_id"])).scalar())
    assert stored == 1, "the erased message stays only as a count"


async def test_the_export_holds_everything_about_the_person_and_nobody_else(client, db, factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person = await _a_whole_relationship(client, db, kit)
    await post_mention(client, kit, handle="@someoneelse", text="@acme a stranger's words")

    exported = await client.get(f"/api/v1/people/{person['person_id']}/export", headers=kit.admin)

    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["person_id"] == person["person_id"]
    tables = body["tables"]
    assert {"people", "handles", "interactions", "notes", "turns", "drafts", "decisions", "replies",
            "audit_events", "webhook_deliveries"} <= set(tables)
    assert [h["handle"] for h in tables["handles"]] == [HANDLE]
    texts = {i["text"] for i in tables["interactions"]}
    assert f"@acme my {SECRET_WORD} order is late" in texts and f"Hi Quentin, the {SECRET_WORD} left today." in texts
    assert "stranger" not in exported.text


@pytest.mark.parametrize("who", ["read", "ingest", "outbox", "reviewer"])
async def test_only_an_admin_may_export_or_erase(client, factory, who) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person_id = (await post_mention(client, kit))["person_id"]
    headers = getattr(kit, who)
    assert (await client.get(f"/api/v1/people/{person_id}/export", headers=headers)).status_code == 403
    assert (await client.delete(f"/api/v1/people/{person_id}", headers=headers)).status_code == 403
    assert (await client.get(f"/api/v1/people/{person_id}", headers=kit.read)).status_code == 200


async def test_an_admin_key_may_export_and_erase_and_nothing_else(client, factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person_id = (await post_mention(client, kit))["person_id"]
    assert (await client.get(f"/api/v1/people/{person_id}/export", headers=kit.admin_key)).status_code == 200
    assert (await client.get("/api/v1/people", headers=kit.admin_key)).status_code == 403
    assert (await client.post("/api/v1/mentions", headers=kit.admin_key, json={})).status_code == 403
    assert (await client.delete(f"/api/v1/people/{person_id}", headers=kit.admin_key)).status_code == 202


async def test_another_brands_person_is_not_found(client, factory) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = await factory.brand(), await factory.brand()
    person_id = (await post_mention(client, theirs))["person_id"]
    assert (await client.get(f"/api/v1/people/{person_id}/export", headers=mine.admin)).status_code == 404
    assert (await client.delete(f"/api/v1/people/{person_id}", headers=mine.admin)).status_code == 404
    assert (await client.get(f"/api/v1/people/{person_id}", headers=theirs.read)).status_code == 200


@pytest.mark.parametrize("person_id", ["0", "-1", "abc", str(2**63), "1.5"])
async def test_a_bad_person_id_is_a_client_error(client, factory, person_id) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    for method in ("GET", "DELETE"):
        path = f"/api/v1/people/{person_id}" + ("/export" if method == "GET" else "")
        answer = await client.request(method, path, headers=kit.admin)
        assert 400 <= answer.status_code < 500, (method, person_id, answer.status_code)


def _assistant(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60)


async def test_privacy_requests_from_the_command_line(client, settings, factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person_id = (await post_mention(client, kit, handle="@clitest", text="@acme cli words"))["person_id"]

    exported = _assistant(settings.database_url, "people", "export", str(person_id))
    assert exported.returncode == 0, exported.stderr
    assert "cli words" in exported.stdout and '"clitest"' in exported.stdout
    refused = _assistant(settings.database_url, "people", "erase", str(person_id), stdin="n\n")
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    erased = _assistant(settings.database_url, "people", "erase", str(person_id), "--yes")
    assert erased.returncode == 0, erased.stderr
    assert f"person {person_id} erased" in erased.stdout and "cli words" not in erased.stdout
    missing = _assistant(settings.database_url, "people", "export", str(person_id))
    assert missing.returncode == 1 and f"There is no person {person_id}" in missing.stderr
    assert "Traceback" not in missing.stderr
