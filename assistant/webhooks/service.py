"""Webhook subscriptions and their delivery log: add, list, remove, rotate a secret, retry by hand.

A secret is ``whsec_`` and the base64 of 32 random bytes (Standard Webhooks). Signing needs it, so it is stored
encrypted (``secret_box``), and shown once: when a subscription is added and when its secret is rotated. A URL
whose host is or resolves to a non-public address is refused (``addresses``) unless the settings allow it.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Connection, select, update

from assistant.audit import record
from assistant.auth.principal import SYSTEM
from assistant.auth.service import brand_by_slug
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.webhooks import Webhook, WebhookDelivery
from assistant.errors import Conflict, NotFound, ValidationFailed
from assistant.jobs import queue
from assistant.settings import Settings
from assistant.webhooks import addresses
from assistant.webhooks.events import EVENTS, MAX_DELIVERY_ATTEMPTS
from assistant.webhooks.secret_box import SecretBox

SECRET_BYTES = 32
DELIVERY_STATES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class Subscribed:
    """A subscription just made or re-keyed: the secret is for the receiver, shown this once."""

    id: int
    secret: str


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host. Credentials do not belong in it: URLs are listed and logged."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        raise ValidationFailed.field("url", "is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationFailed.field("url", "give an absolute http:// or https:// URL")
    if parsed.userinfo:
        raise ValidationFailed.field("url", "must not carry a user name or password")
    if len(str(parsed)) > 2000:
        raise ValidationFailed.field("url", "is longer than 2,000 characters")
    return str(parsed)


def check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if not events or unknown:
        raise ValidationFailed.field("events", f"choose from {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))


_HOOKS = Webhook.__table__
_DELIVERIES = WebhookDelivery.__table__


async def check_destination(settings: Settings, url: str) -> None:
    """A URL webhooks may be sent to: its host is and resolves to public addresses only, unless the settings
    allow others (422 naming the address and why otherwise)."""
    if settings.webhook_allow_private_addresses:
        return
    try:
        await addresses.pin(url)
    except addresses.AddressRefused as exc:
        raise ValidationFailed.field("url", f"{exc}: webhooks go to public addresses only ({addresses.ALLOW_SETTING}"
                                            "=1 allows others)") from None


async def add_webhook(db: Database, settings: Settings, brand_slug: str, url: str, events: list[str]) -> Subscribed:
    url, events = check_url(url), check_events(events)
    await check_destination(settings, url)
    secret = new_secret()
    sealed = SecretBox.from_settings(settings).seal(secret)
    hook_id = await db.run_write(_add_webhook, brand_slug, url, events, sealed)
    return Subscribed(hook_id, secret)


def _add_webhook(conn: Connection, brand_slug: str, url: str, events: list[str], sealed: str) -> int:
    brand = brand_by_slug(conn, brand_slug)
    hook_id = conn.execute(_HOOKS.insert(), {"brand_id": brand.id, "url": url, "events": events, "secret": sealed,
                                             "active": True, "created_at": utcnow()}).inserted_primary_key[0]
    record(conn, SYSTEM, "webhook.added", "webhook", hook_id, brand_id=brand.id, url=url, events=events)
    return int(hook_id)


async def list_webhooks(db: Database, brand_slug: str) -> list[Any]:
    """The brand's active subscriptions: rows of ``id, url, events, created_at`` (never the secret)."""
    return await db.run_read(_list_webhooks, brand_slug)


def _list_webhooks(conn: Connection, brand_slug: str) -> list[Any]:
    brand = brand_by_slug(conn, brand_slug)
    return list(conn.execute(select(_HOOKS.c.id, _HOOKS.c.url, _HOOKS.c.events, _HOOKS.c.created_at)
                             .where(_HOOKS.c.brand_id == brand.id, _HOOKS.c.active.is_(True))
                             .order_by(_HOOKS.c.id)).all())


async def remove_webhook(db: Database, webhook_id: int) -> None:
    """Stop sending to it. The row stays (inactive) so its delivery log still reads; pending deliveries fail."""
    await db.run_write(_change, webhook_id, "webhook.removed", {"active": False})


async def rotate_secret(db: Database, settings: Settings, webhook_id: int) -> Subscribed:
    """A new secret signs every delivery from now on, retries of older events included."""
    secret = new_secret()
    sealed = SecretBox.from_settings(settings).seal(secret)
    await db.run_write(_change, webhook_id, "webhook.secret_rotated", {"secret": sealed})
    return Subscribed(webhook_id, secret)


def _change(conn: Connection, webhook_id: int, action: str, values: dict[str, Any]) -> None:
    """Change an active subscription and record it; an unknown or removed one is 404."""
    hook = _active(conn, webhook_id)
    conn.execute(update(_HOOKS).where(_HOOKS.c.id == webhook_id).values(**values))
    record(conn, SYSTEM, action, "webhook", webhook_id, brand_id=hook.brand_id)


async def list_deliveries(db: Database, *, brand_slug: str | None, status: str | None,
                          limit: int = 50) -> list[tuple[Any, str]]:
    """Newest first, each with its subscription's URL."""
    if status is not None and status not in DELIVERY_STATES:
        raise ValidationFailed.field("status", f"choose from {', '.join(DELIVERY_STATES)}")
    return await db.run_read(_list_deliveries, brand_slug, status, limit)


def _list_deliveries(conn: Connection, brand_slug: str | None, status: str | None, limit: int) -> list[tuple[Any, str]]:
    query = select(_DELIVERIES, _HOOKS.c.url.label("webhook_url")).join(_HOOKS, _HOOKS.c.id == _DELIVERIES.c.webhook_id)
    if status is not None:
        query = query.where(_DELIVERIES.c.status == status)
    if brand_slug is not None:
        query = query.where(_DELIVERIES.c.brand_id == brand_by_slug(conn, brand_slug).id)
    return [(row, row.webhook_url) for row in conn.execute(query.order_by(_DELIVERIES.c.id.desc()).limit(limit))]


async def retry_delivery(db: Database, delivery_id: int) -> None:
    """Send a delivery again with a fresh retry schedule; receivers dedupe on its unchanged ``webhook-id``."""
    await db.run_write(_retry_delivery, delivery_id)


def _retry_delivery(conn: Connection, delivery_id: int) -> None:
    delivery = conn.execute(select(_DELIVERIES.c.status, _DELIVERIES.c.webhook_id, _DELIVERIES.c.brand_id)
                            .where(_DELIVERIES.c.id == delivery_id)).first()
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    if delivery.status == "pending":
        raise Conflict(f"delivery {delivery_id} is still pending; it is retried on its schedule")
    _active(conn, delivery.webhook_id)
    conn.execute(update(_DELIVERIES).where(_DELIVERIES.c.id == delivery_id).values(status="pending"))
    queue.enqueue(conn, queue.DELIVER_WEBHOOK, [delivery_id], brand_id=delivery.brand_id,
                  max_attempts=MAX_DELIVERY_ATTEMPTS, skip_if_queued=True)
    record(conn, SYSTEM, "webhook.delivery_retried", "webhook_delivery", delivery_id, brand_id=delivery.brand_id)


def _active(conn: Connection, webhook_id: int) -> Any:
    hook = conn.execute(select(_HOOKS.c.id, _HOOKS.c.brand_id).where(_HOOKS.c.id == webhook_id,
                                                                      _HOOKS.c.active.is_(True))).first()
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return hook
