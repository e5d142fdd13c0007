"""Emitting events: one delivery row per subscribed webhook, written in the caller's transaction (so an event
exists exactly when the change it reports was committed), and a delivery job for each."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.db.base import utcnow
from assistant.db.webhooks import Webhook, WebhookDelivery
from assistant.jobs import queue

EVENTS = ("turn.pending_review", "turn.escalated", "reply.approved", "reply.posted", "reply.failed")
MAX_DELIVERY_ATTEMPTS = 8
"""The first attempt and the seven retries of SPEC 5; the delivery handler also stops at the schedule's end."""


async def emit(session: AsyncSession, brand_id: int, event: str, data: dict[str, Any]) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event}")
    hooks = (await session.execute(select(Webhook.id, Webhook.events).where(
        Webhook.brand_id == brand_id, Webhook.active.is_(True)))).all()
    now = utcnow()
    for hook_id, events in hooks:
        if event not in events:
            continue
        event_id = f"msg_{uuid.uuid4().hex}"
        delivery = WebhookDelivery(webhook_id=hook_id, brand_id=brand_id, event_id=event_id, event_type=event,
                                   payload={"type": event, "timestamp": now.isoformat(), "data": data},
                                   status="pending", created_at=now)
        session.add(delivery)
        await session.flush()
        await queue.enqueue(session, queue.DELIVER_WEBHOOK, [delivery.id], brand_id=brand_id,
                            max_attempts=MAX_DELIVERY_ATTEMPTS, skip_if_queued=False)
