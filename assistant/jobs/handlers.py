"""Which code runs which kind of job: the one place the worker is assembled."""

from __future__ import annotations

from assistant.db import Database
from assistant.drafting.service import Drafter
from assistant.jobs import queue
from assistant.jobs.worker import Handler, Worker
from assistant.settings import Settings
from assistant.webhooks.delivery import WebhookSender


def build_worker(db: Database, settings: Settings, *, concurrency: int | None = None) -> Worker:
    handlers: dict[str, Handler] = {}
    drafter = Drafter(db, settings)
    handlers[queue.DRAFT_TURN] = drafter.draft_turn
    handlers[queue.DELIVER_WEBHOOK] = WebhookSender(db, settings).deliver
    return Worker(db, handlers, concurrency=concurrency or settings.worker_concurrency,
                  lease_seconds=settings.job_lease_seconds, poll_seconds=settings.job_poll_seconds,
                  closers=[drafter.aclose])
