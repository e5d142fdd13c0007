"""The worker: claims jobs, runs the handler registered for each kind, and stops cleanly.

It runs inside ``assistant serve`` (SQLite default) or as ``assistant worker`` processes (PostgreSQL). On
SIGTERM it stops claiming, gives running jobs ``grace_seconds`` to finish and hands back the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from assistant.db import Database
from assistant.db.jobs import Job
from assistant.jobs import queue

log = logging.getLogger("assistant.worker")

Handler = Callable[[Job], Awaitable[None]]
"""Runs one job. Its effects must be idempotent (a job runs at least once); it may call ``queue.finish`` in
the transaction that stores its result, else the worker marks the job done after it returns."""


class JobFailed(Exception):
    """A handler's way to ask for a retry after ``delay`` seconds (None: the usual backoff)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Worker:
    def __init__(self, db: Database, handlers: dict[str, Handler], *, concurrency: int = 8,
                 lease_seconds: float = 60.0, poll_seconds: float = 0.5, grace_seconds: float = 10.0) -> None:
        self.db = db
        self.handlers = handlers
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: dict[asyncio.Task[None], Job] = {}

    def wake(self) -> None:
        """New work was queued in this process: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            jobs: list[Job] = []
            if free > 0:
                try:
                    jobs = await queue.claim(self.db, self.id, list(self.handlers), free, self.lease_seconds)
                except Exception:  # the database may be briefly unavailable; keep the worker alive
                    log.exception("claiming jobs failed")
            for job in jobs:
                task = asyncio.create_task(self._run_one(job))
                self._running[task] = job
                task.add_done_callback(self._running.pop)
            if not jobs or free <= len(jobs):
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except asyncio.TimeoutError:
                    pass
        await self._drain()

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Work until no job is ready or running (tests and the demo)."""
        async def loop() -> None:
            while True:
                free = self.concurrency - len(self._running)
                jobs = await queue.claim(self.db, self.id, list(self.handlers), free, self.lease_seconds) if free else []
                for job in jobs:
                    task = asyncio.create_task(self._run_one(job))
                    self._running[task] = job
                    task.add_done_callback(self._running.pop)
                if not jobs and not self._running:
                    return
                if self._running:
                    await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait_for(loop(), timeout)

    async def _drain(self) -> None:
        if not self._running:
            return
        done, pending = await asyncio.wait(list(self._running), timeout=self.grace_seconds)
        leftover = [self._running[t] for t in pending if t in self._running]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await queue.release(self.db, leftover)
        log.info("worker %s stopped: %d finished, %d handed back", self.id, len(done), len(leftover))

    async def _run_one(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        try:
            await handler(job)
            async with self.db.write() as session:
                await queue.finish(session, job)
        except asyncio.CancelledError:
            raise
        except JobFailed as exc:
            status = await queue.retry_or_bury(self.db, job, str(exc), exc.delay)
            log.warning("job %s (%s #%s) failed, now %s: %s", job.id, job.kind, job.subject_id, status, exc)
        except Exception as exc:
            log.exception("job %s (%s #%s) crashed", job.id, job.kind, job.subject_id)
            await queue.retry_or_bury(self.db, job, f"{type(exc).__name__}: {exc}")
