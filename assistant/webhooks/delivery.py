"""Delivering one webhook event: sign it (Standard Webhooks), POST it, log the attempt, retry on schedule.

The ``webhook-id`` is the delivery's ``event_id``, the same on every retry, so a receiver that dedupes on it
sees each event once. A receiver that never answers costs the worker one timeout per attempt, no more: the
whole request, however slowly the receiver drips, is bounded by ``webhook_timeout_seconds``. Before each
attempt the host is resolved and checked again (``addresses``: its name may point somewhere else by now) and
the request goes to the address checked; a refused address is a failed attempt with the reason, and nothing is
sent. The signing secret is decrypted for the attempt only (``secret_box``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import ssl
import time
from typing import Any

import certifi
import httpx
from sqlalchemy import Connection, bindparam, select, update
from standardwebhooks import Webhook as Signer

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.jobs import Job
from assistant.db.webhooks import Webhook, WebhookAttempt, WebhookDelivery
from assistant.jobs import queue
from assistant.jobs.worker import JobFailed
from assistant.settings import Settings, SettingsError
from assistant.webhooks import addresses
from assistant.webhooks.secret_box import SecretBox, SecretUnreadable

log = logging.getLogger("assistant.webhooks")

USER_AGENT = "reply-assistant-webhooks/1"


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for all deliveries: building it reads the CA bundle, which is not free."""
    return ssl.create_default_context(cafile=certifi.where())


def signed_headers(event_id: str, secret: str, body: str, at: float) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` sent at ``at`` (seconds since the epoch)."""
    sent = dt.datetime.fromtimestamp(int(at), dt.timezone.utc)
    return {"webhook-id": event_id, "webhook-timestamp": str(int(at)),
            "webhook-signature": Signer(secret).sign(event_id, sent, body),
            "content-type": "application/json", "user-agent": USER_AGENT}


class WebhookSender:
    """The ``DELIVER_WEBHOOK`` job handler."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.timeout = settings.webhook_timeout_seconds
        self.schedule = settings.webhook_retry_schedule
        self._box: SecretBox | None = None

    def _secret(self, stored: str) -> str:
        """The subscription's signing secret; ``SecretUnreadable`` (or ``SettingsError`` without a key)."""
        if self._box is None:
            self._box = SecretBox.from_settings(self.settings)
        return self._box.open(stored)

    async def deliver(self, job: Job) -> None:
        row = await self.db.run_read(_delivery, job.subject_id)
        if row is None or row.status != "pending":
            return  # already delivered (a lapsed lease ran it twice) or given up on
        delivery = hook = row
        if not hook.webhook_active:
            await self._log(job, delivery, None, "the webhook was removed", 0, final="failed")
            return
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
        started = time.perf_counter()
        try:
            headers = signed_headers(delivery.event_id, self._secret(hook.webhook_secret), body, time.time())
        except (SecretUnreadable, SettingsError) as exc:
            status_code, error = None, str(exc)
        else:
            status_code, error = await self._post(hook.webhook_url, body, headers)
        duration_ms = round((time.perf_counter() - started) * 1000)
        if error is None:
            await self._log(job, delivery, status_code, None, duration_ms, final="delivered")
            return
        exhausted = job.attempts > len(self.schedule) or job.attempts >= job.max_attempts
        await self._log(job, delivery, status_code, error, duration_ms, final="failed" if exhausted else None)
        if not exhausted:
            raise JobFailed(f"delivery {delivery.id} to webhook {delivery.webhook_id}: {error}",
                            delay=self.schedule[job.attempts - 1])
        log.warning("delivery %s to webhook %s failed for good after %s attempts: %s",
                    delivery.id, delivery.webhook_id, job.attempts, error)

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str | None]:
        """The receiver's status code and, unless it answered 2xx, what went wrong."""
        extensions: dict[str, Any] = {}
        try:
            async with asyncio.timeout(self.timeout):
                if not self.settings.webhook_allow_private_addresses:
                    pinned = await addresses.pin(url)
                    url, headers = pinned.url, headers | {"host": pinned.host_header}
                    extensions["sni_hostname"] = pinned.server_name
                async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, verify=_tls()) as client:
                    async with client.stream("POST", url, content=body.encode(), headers=headers,
                                             extensions=extensions) as response:
                        code = response.status_code
        except addresses.AddressRefused as exc:
            return None, f"refused, nothing sent: {exc}"
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        return code, None if 200 <= code < 300 else f"answered HTTP {code}"

    async def _log(self, job: Job, delivery: Any, status_code: int | None, error: str | None,
                   duration_ms: int, *, final: str | None) -> None:
        """Record the attempt; a delivery that is ``delivered`` or ``failed`` also finishes its job."""
        await self.db.run_write(_log_attempt, job, delivery.id, status_code, error, duration_ms, final)


_DELIVERY = (select(*WebhookDelivery.__table__.c, Webhook.url.label("webhook_url"),
                    Webhook.secret.label("webhook_secret"), Webhook.active.label("webhook_active"))
             .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
             .where(WebhookDelivery.id == bindparam("delivery_id")))


def _delivery(conn: Connection, delivery_id: int | None) -> Any:
    """The delivery with its subscription's URL, secret and whether it is still active; None when gone."""
    return conn.execute(_DELIVERY, {"delivery_id": delivery_id}).first()


def _log_attempt(conn: Connection, job: Job, delivery_id: int, status_code: int | None, error: str | None,
                 duration_ms: int, final: str | None) -> None:
    now = utcnow()
    deliveries = WebhookDelivery.__table__
    attempt = conn.execute(
        update(deliveries).where(deliveries.c.id == delivery_id).values(
            attempts=deliveries.c.attempts + 1, last_status_code=status_code, last_error=error,
            last_attempt_at=now, status=final or "pending").returning(deliveries.c.attempts)).scalar_one()
    conn.execute(WebhookAttempt.__table__.insert(), {
        "delivery_id": delivery_id, "attempt": attempt, "status_code": status_code, "error": error,
        "duration_ms": duration_ms, "created_at": now})
    if final is not None:
        queue.finish(conn, job)
