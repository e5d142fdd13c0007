"""Webhook delivery end to end: a real receiver on loopback verifies every request with the
``standardwebhooks`` library, fails on cue, hangs on cue, and dedupes on ``webhook-id``."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections import deque

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import standardwebhooks
from sqlalchemy import Row, select

from assistant.app import build_worker
from assistant.db import Database
from assistant.db.jobs import Job
from assistant.db.webhooks import WebhookAttempt, WebhookDelivery
from assistant.errors import Conflict, NotFound, ValidationFailed
from assistant.jobs import queue
from assistant.jobs.worker import Worker
from assistant.settings import Settings
from assistant.webhooks import service
from assistant.webhooks.delivery import WebhookSender
from assistant.webhooks.events import emit
from tests.support.db import rows, scalars
from tests.support.outbox_helpers import approved_replies, claim

HANG = -1
"""A scripted answer that never comes (until the receiver stops)."""


class Receiver:
    """An HTTP server in a thread that answers POSTs with scripted status codes (then ``default``)."""

    def __init__(self, *script: int, default: int = 200) -> None:
        self.script, self.default = deque(script), default
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock, self.stopping = threading.Lock(), threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.script.popleft() if receiver.script else receiver.default
                if status == HANG:
                    receiver.stopping.wait(60)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def verified(self, secret: str) -> list[Any]:
        """Every request verified with the standardwebhooks library (raises if one does not verify)."""
        return [standardwebhooks.Webhook(secret).verify(body, headers) for headers, body in self.received]

    def events_after_dedupe(self, secret: str) -> dict[str, Any]:
        return {headers["webhook-id"]: payload
                for (headers, _), payload in zip(self.received, self.verified(secret))}

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.replace(webhook_retry_schedule=(0.05, 0.05, 0.05), webhook_timeout_seconds=2.0)


def sender_worker(db: Database, settings: Settings) -> Worker:
    return Worker(db, {queue.DELIVER_WEBHOOK: WebhookSender(db, settings).deliver}, concurrency=8, poll_seconds=0.02)


async def deliver_until_settled(db: Database, settings: Settings, timeout: float = 10.0) -> None:
    """Run a delivery worker until no delivery is pending."""
    worker = sender_worker(db, settings)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while await deliveries(db, "pending"):
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await task


async def deliveries(db: Database, status: str | None = None) -> list[Row[Any]]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return await rows(db, query)


async def attempts(db: Database) -> list[Row[Any]]:
    return await rows(db, select(WebhookAttempt).order_by(WebhookAttempt.id))


async def emit_event(db: Database, brand_id: int, event: str = "turn.escalated", **data: Any) -> None:
    await db.run_write(emit, brand_id, event, [data or {"turn_id": 1}])


async def test_the_worker_delivers_webhooks(db, settings):
    assert queue.DELIVER_WEBHOOK in build_worker(db, settings).handlers


async def test_an_event_arrives_signed_after_two_failures_and_counts_once(client, db, factory, fast):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    with Receiver(500, 500) as receiver:
        hook = await service.add_webhook(db, fast, kit.slug, receiver.url, ["reply.posted"])
        token = (await claim(client, kit))[reply_id]
        answer = await client.post(f"/api/v1/replies/{reply_id}/posted", json={"external_id": "p-1",
                                                                               "claim_token": token},
                                   headers=kit.outbox)
        assert answer.status_code == 200
        await deliver_until_settled(db, fast)
    events = receiver.events_after_dedupe(hook.secret)
    assert len(receiver.received) == 3 and len(events) == 1
    [(event_id, event)] = events.items()
    assert event["type"] == "reply.posted" and event["data"]["reply_id"] == reply_id
    assert event["data"]["external_id"] == "p-1"
    [delivery] = await deliveries(db)
    assert (delivery.status, delivery.attempts, delivery.event_id) == ("delivered", 3, event_id)
    log = await attempts(db)
    assert [(a.attempt, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 200)]
    assert [a.error for a in log] == ["answered HTTP 500", "answered HTTP 500", None]
    assert all(a.duration_ms >= 0 for a in log)
    stamps = [int(headers["webhook-timestamp"]) for headers, _ in receiver.received]
    assert abs(stamps[0] - time.time()) < 30


async def test_a_delivery_fails_for_good_after_the_schedule_and_can_be_retried_by_hand(db, factory, fast):
    kit = await factory.brand()
    with Receiver(default=503) as receiver:
        hook = await service.add_webhook(db, fast, kit.slug, receiver.url, ["turn.escalated"])
        await emit_event(db, kit.id)
        [pending] = await deliveries(db)
        with pytest.raises(Conflict):
            await service.retry_delivery(db, pending.id)
        await deliver_until_settled(db, fast)
        [delivery] = await deliveries(db)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 4, 503)
        assert await scalars(db, select(Job.status)) == ["done"]
        receiver.default = 200
        await service.retry_delivery(db, delivery.id)
        await deliver_until_settled(db, fast)
    [delivery] = await deliveries(db)
    assert (delivery.status, delivery.attempts) == ("delivered", 5)
    assert len(receiver.received) == 5 and len(receiver.events_after_dedupe(hook.secret)) == 1
    with pytest.raises(NotFound):
        await service.retry_delivery(db, delivery.id + 1000)


async def test_a_receiver_that_hangs_costs_only_its_timeout(db, factory, fast):
    kit = await factory.brand()
    settings = fast.replace(webhook_timeout_seconds=0.4, webhook_retry_schedule=(0.05,))
    with Receiver(HANG, HANG) as hanging, Receiver() as healthy:
        await service.add_webhook(db, fast, kit.slug, hanging.url, ["turn.escalated"])
        good = await service.add_webhook(db, fast, kit.slug, healthy.url, ["turn.escalated"])
        started = time.monotonic()
        worker = sender_worker(db, settings)
        task = asyncio.create_task(worker.run())
        await emit_event(db, kit.id)
        worker.wake()
        async with asyncio.timeout(5):
            while not healthy.received:
                await asyncio.sleep(0.01)
        healthy_after = time.monotonic() - started
        async with asyncio.timeout(5):
            while await deliveries(db, "pending"):
                await asyncio.sleep(0.02)
        worker.stop()
        await task
        took = time.monotonic() - started
    assert healthy_after < 0.4, "the healthy receiver must not wait behind the hanging one"
    assert len(healthy.events_after_dedupe(good.secret)) == 1
    assert took < 2.0
    hung = [a for a in await attempts(db) if a.error]
    assert [a.error for a in hung] == ["no answer within 0.4 s"] * 2
    assert all(350 <= a.duration_ms < 1500 for a in hung)
    statuses = sorted(d.status for d in await deliveries(db))
    assert statuses == ["delivered", "failed"]


async def test_a_rotated_secret_signs_new_deliveries_and_the_old_one_no_longer_verifies(db, factory, fast):
    kit = await factory.brand()
    with Receiver() as receiver:
        hook = await service.add_webhook(db, fast, kit.slug, receiver.url, ["turn.escalated"])
        await emit_event(db, kit.id, turn_id=1)
        await deliver_until_settled(db, fast)
        assert len(receiver.verified(hook.secret)) == 1
        rotated = await service.rotate_secret(db, fast, hook.id)
        await emit_event(db, kit.id, turn_id=2)
        await deliver_until_settled(db, fast)
    assert rotated.secret != hook.secret
    headers, body = receiver.received[1]
    assert standardwebhooks.Webhook(rotated.secret).verify(body, headers)["data"] == {"turn_id": 2}
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(hook.secret).verify(body, headers)


async def test_secrets_are_random_whsec_values_and_never_logged(db, factory, fast, caplog):
    kit = await factory.brand()
    first = await service.add_webhook(db, fast, kit.slug, "http://127.0.0.1:9/unreachable", ["turn.escalated"])
    second = await service.add_webhook(db, fast, kit.slug, "http://127.0.0.1:9/unreachable", ["turn.escalated"])
    for made in (first, second):
        assert made.secret.startswith("whsec_") and len(base64.b64decode(made.secret[6:])) >= 24
    assert first.secret != second.secret
    caplog.set_level(logging.DEBUG)
    await emit_event(db, kit.id)
    await deliver_until_settled(db, fast)
    failed = await deliveries(db)
    assert {d.status for d in failed} == {"failed"}
    assert all("ConnectError" in (d.last_error or "") for d in failed)
    assert "failed for good" in caplog.text  # the failures were logged: the log below is not empty by accident
    text = caplog.text + "".join(d.last_error or "" for d in failed)
    assert first.secret not in text and second.secret not in text
    assert first.secret[6:] not in text


async def test_a_delivery_keeps_the_webhook_url_out_of_the_log(db, factory, fast, service_logging):
    """A webhook's URL often carries its secret (a Slack webhook's path is one): the HTTP client's line per request,
    which names the whole URL, stays out of the service's log."""
    kit = await factory.brand()
    with Receiver() as receiver:
        url = f"{receiver.url}/services/T0AB/B0CD/pathsecret42?token=querysecret42"
        await service.add_webhook(db, fast, kit.slug, url, ["turn.escalated"])
        await emit_event(db, kit.id)
        await deliver_until_settled(db, fast)
    assert [d.status for d in await deliveries(db)] == ["delivered"] and len(receiver.received) == 1
    assert "pathsecret42" not in service_logging.text and "querysecret42" not in service_logging.text


async def test_a_removed_webhook_gets_no_new_events_and_its_pending_ones_fail(db, factory, fast):
    kit = await factory.brand()
    with Receiver() as receiver:
        hook = await service.add_webhook(db, fast, kit.slug, receiver.url, ["turn.escalated"])
        await emit_event(db, kit.id)
        await service.remove_webhook(db, hook.id)
        await emit_event(db, kit.id)
        await deliver_until_settled(db, fast)
    assert receiver.received == []
    [delivery] = await deliveries(db)
    assert (delivery.status, delivery.last_error) == ("failed", "the webhook was removed")
    assert await service.list_webhooks(db, kit.slug) == []
    with pytest.raises(NotFound):
        await service.remove_webhook(db, hook.id)


async def test_webhooks_only_hear_their_own_brand_and_events(db, factory, fast):
    kit, other = await factory.brand(), await factory.brand()
    with Receiver() as receiver:
        hook = await service.add_webhook(db, fast, kit.slug, receiver.url, ["reply.approved"])
        await approved_replies(db, other, 1)
        await emit_event(db, kit.id, "turn.escalated")
        await approved_replies(db, kit, 1)
        await deliver_until_settled(db, fast)
    [event] = receiver.events_after_dedupe(hook.secret).values()
    assert event["type"] == "reply.approved"


@pytest.mark.parametrize("url, events, field", [
    ("ftp://example.com/hook", ["reply.posted"], "url"),
    ("not a url", ["reply.posted"], "url"),
    ("https://", ["reply.posted"], "url"),
    ("https://user:pw@example.com/hook", ["reply.posted"], "url"),
    ("https://example.com/hook", [], "events"),
    ("https://example.com/hook", ["reply.deleted"], "events"),
])
async def test_bad_subscriptions_are_refused(db, factory, settings, url, events, field):
    kit = await factory.brand()
    with pytest.raises(ValidationFailed) as refused:
        await service.add_webhook(db, settings, kit.slug, url, events)
    assert refused.value.errors[0]["field"] == field
    assert await service.list_webhooks(db, kit.slug) == []


async def test_webhooks_from_the_command_line(cli, db, factory):
    kit = await factory.brand()

    async def webhooks(*args: str):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(cli, "webhooks", *args)

    added = await webhooks("add", "https://tools.example/hooks", "--brand", kit.slug, "--event", "reply.posted",
                           "--event", "reply.failed")
    assert added.exit_code == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "not shown again" in added.stderr
    listed = await webhooks("list", "--brand", kit.slug)
    assert "https://tools.example/hooks" in listed.stdout and "reply.posted,reply.failed" in listed.stdout
    assert secret not in listed.stdout
    hook_id = listed.stdout.split("\t")[0]
    rotated = await webhooks("rotate-secret", hook_id)
    assert rotated.exit_code == 0 and rotated.stdout.strip().startswith("whsec_")
    assert rotated.stdout.strip() != secret

    await emit_event(db, kit.id, "reply.failed", reply_id=1)
    shown = await webhooks("deliveries", "--brand", kit.slug, "--status", "pending")
    assert "reply.failed" in shown.stdout and "attempts=0" in shown.stdout
    delivery_id = shown.stdout.split("\t")[0]
    busy = await webhooks("retry", delivery_id)
    assert busy.exit_code == 1 and "still pending" in busy.stderr

    bad = await webhooks("add", "ftp://tools.example", "--brand", kit.slug, "--event", "reply.posted")
    assert bad.exit_code != 0 and "url" in bad.stderr
    unknown_event = await webhooks("add", "https://tools.example", "--brand", kit.slug, "--event", "reply.deleted")
    assert unknown_event.exit_code != 0 and "Invalid value for '--event'" in unknown_event.stderr
    assert (await webhooks("remove", hook_id)).exit_code == 0
    gone = await webhooks("remove", hook_id)
    assert gone.exit_code == 1 and f"no webhook {hook_id}" in gone.stderr
