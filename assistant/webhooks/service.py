"""Webhook subscriptions and their delivery log: add, list, remove, rotate a secret, retry by hand.

A secret is ``whsec_`` and the base64 of 32 random bytes (Standard Webhooks). It is stored as is, because
signing needs it, and shown once: when a subscription is added and when its secret is rotated.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.audit import record
from assistant.auth.principal import SYSTEM
from assistant.auth.service import brand_by_slug
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.webhooks import Webhook, WebhookDelivery
from assistant.errors import Conflict, NotFound, ValidationFailed
from assistant.jobs import queue
from assistant.webhooks.events import EVENTS, MAX_DELIVERY_ATTEMPTS

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


async def add_webhook(db: Database, brand_slug: str, url: str, events: list[str]) -> Subscribed:
    url, events = check_url(url), check_events(events)
    secret = new_secret()
    async with db.write() as session:
        brand = await (await session.connection()).run_sync(brand_by_slug, brand_slug)
        hook = Webhook(brand_id=brand.id, url=url, events=events, secret=secret, active=True, created_at=utcnow())
        session.add(hook)
        await session.flush()
        await (await session.connection()).run_sync(record, SYSTEM, "webhook.added", "webhook", hook.id,
                brand_id=brand.id, url=url, events=events)
    return Subscribed(hook.id, secret)


async def list_webhooks(db: Database, brand_slug: str) -> list[Webhook]:
    async with db.read() as session:
        brand = await (await session.connection()).run_sync(brand_by_slug, brand_slug)
        return list((await session.execute(select(Webhook).where(
            Webhook.brand_id == brand.id, Webhook.active.is_(True)).order_by(Webhook.id))).scalars())


async def remove_webhook(db: Database, webhook_id: int) -> None:
    """Stop sending to it. The row stays (inactive) so its delivery log still reads; pending deliveries fail."""
    async with db.write() as session:
        hook = await _active(session, webhook_id)
        hook.active = False
        await (await session.connection()).run_sync(record, SYSTEM, "webhook.removed", "webhook", hook.id,
                brand_id=hook.brand_id)


async def rotate_secret(db: Database, webhook_id: int) -> Subscribed:
    """A new secret signs every delivery from now on, retries of older events included."""
    secret = new_secret()
    async with db.write() as session:
        hook = await _active(session, webhook_id)
        hook.secret = secret
        await (await session.connection()).run_sync(record, SYSTEM, "webhook.secret_rotated", "webhook", hook.id,
                brand_id=hook.brand_id)
    return Subscribed(webhook_id, secret)


async def list_deliveries(db: Database, *, brand_slug: str | None, status: str | None,
                          limit: int = 50) -> list[tuple[WebhookDelivery, str]]:
    """Newest first, each with its subscription's URL."""
    query = select(WebhookDelivery, Webhook.url).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
    if status is not None:
        if status not in DELIVERY_STATES:
            raise ValidationFailed.field("status", f"choose from {', '.join(DELIVERY_STATES)}")
        query = query.where(WebhookDelivery.status == status)
    async with db.read() as session:
        if brand_slug is not None:
            brand = await (await session.connection()).run_sync(brand_by_slug, brand_slug)
            query = query.where(WebhookDelivery.brand_id == brand.id)
        rows = await session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit))
        return [(delivery, url) for delivery, url in rows]


async def retry_delivery(db: Database, delivery_id: int) -> None:
    """Send a delivery again with a fresh retry schedule; receivers dedupe on its unchanged ``webhook-id``."""
    async with db.write() as session:
        delivery = await session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id}")
        if delivery.status == "pending":
            raise Conflict(f"delivery {delivery_id} is still pending; it is retried on its schedule")
        await _active(session, delivery.webhook_id)
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
            status="pending"), execution_options={"synchronize_session": False})
        await queue.enqueue(session, queue.DELIVER_WEBHOOK, [delivery_id], brand_id=delivery.brand_id,
                            max_attempts=MAX_DELIVERY_ATTEMPTS, skip_if_queued=True)
        await (await session.connection()).run_sync(record, SYSTEM, "webhook.delivery_retried", "webhook_delivery",
                delivery_id, brand_id=delivery.brand_id)


async def _active(session: AsyncSession, webhook_id: int) -> Webhook:
    hook = await session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.active.is_(True)))
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return hook
