"""Which code runs which kind of job: the one place the worker is assembled."""

from __future__ import annotations

from litestar.datastructures import State

from assistant.jobs.worker import Handler, Worker


def build_worker(state: State, *, concurrency: int | None = None) -> Worker:
    settings = state.settings
    handlers: dict[str, Handler] = {}
    return Worker(state.db, handlers, concurrency=concurrency or settings.worker_concurrency,
                  lease_seconds=settings.job_lease_seconds, poll_seconds=settings.job_poll_seconds)
