"""Which code runs which kind of job: the one place the worker is assembled."""

from __future__ import annotations

from litestar.datastructures import State

from assistant.drafting.service import Drafter
from assistant.jobs import queue
from assistant.jobs.worker import Handler, Worker
from assistant.memory.approvals import READ_PROMISES
from assistant.memory.jobs import MemoryJobs
from assistant.webhooks.delivery import WebhookSender


def build_worker(state: State, *, concurrency: int | None = None) -> Worker:
    settings = state.settings
    handlers: dict[str, Handler] = {}
    drafter = Drafter(state.db, settings)
    handlers[queue.DRAFT_TURN] = drafter.draft_turn
    handlers[queue.DELIVER_WEBHOOK] = WebhookSender(state.db, settings).deliver
    memory = MemoryJobs(state.db, settings)
    handlers[READ_PROMISES] = memory.read_promises
    return Worker(state.db, handlers, concurrency=concurrency or settings.worker_concurrency,
                  lease_seconds=settings.job_lease_seconds, poll_seconds=settings.job_poll_seconds,
                  closers=[drafter.aclose, memory.aclose], sweeps=[memory.sweep],
                  sweep_seconds=settings.memory_sweep_seconds)
