"""Emitting events: one delivery row per subscribed webhook, written in the caller's transaction (so an event
exists exactly when the change it reports was committed), and a delivery job for each."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from assistant.db.base import utcnow
from assistant.db.webhooks import Webhook, WebhookDelivery
from assistant.jobs import queue

EVENTS = ("turn.pending_review", "turn.escalated", "reply.approved", "reply.posted", "reply.failed",
          "promise.due", "promise.settled", "turn.overdue", "person.erased")
MAX_DELIVERY_ATTEMPTS = 8
"""The first attempt and the seven retries of SPEC 5; the delivery handler also stops at the schedule's end."""


_DELIVERIES = WebhookDelivery.__table__
_HOOKS = select(Webhook.id, Webhook.events).where(Webhook.brand_id == bindparam("brand_id"), Webhook.active.is_(True))


def emit(conn: Connection, brand_id: int, event: str, items: Sequence[dict[str, Any]]) -> None:
    """One event per item, in the connection's transaction, reading the brand's subscriptions once for all of
    them (batched confirmations)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event}")
    if not items:
        return
    hooks = [hook_id for hook_id, events in conn.execute(_HOOKS, {"brand_id": brand_id}).all() if event in events]
    if not hooks:
        return
    now = utcnow()
    rows = [{"webhook_id": hook_id, "brand_id": brand_id, "event_id": f"msg_{uuid.uuid4().hex}",
             "event_type": event, "payload": {"type": event, "timestamp": now.isoformat(), "data": data},
             "status": "pending", "attempts": 0, "created_at": now}
            for hook_id in hooks for data in items]
    if len(rows) == 1:
        ids = [conn.execute(_DELIVERIES.insert().values(rows[0])).inserted_primary_key[0]]
    else:
        ids = list(conn.execute(_DELIVERIES.insert().returning(_DELIVERIES.c.id, sort_by_parameter_order=True),
                                rows).scalars())
    queue.enqueue(conn, queue.DELIVER_WEBHOOK, ids, brand_id=brand_id,
                     max_attempts=MAX_DELIVERY_ATTEMPTS, skip_if_queued=False)
