"""The worker: claims jobs, runs the handler registered for each kind, and stops cleanly.

It runs inside ``assistant serve`` (SQLite default) or as ``assistant worker`` processes (PostgreSQL). A job
that finishes hands its slot to the next ready job, claimed in its finishing transaction (``queue.Relay``);
other free slots are refilled by claims (a few finishing together share one); leases of running jobs
are renewed while they run, so only a worker that died loses its jobs. On SIGTERM it stops claiming, gives
running jobs ``grace_seconds`` to finish and hands back the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence

from assistant.db import Database
from assistant.db.jobs import Job
from assistant.jobs import queue

log = logging.getLogger("assistant.worker")

Handler = Callable[[Job], Awaitable[None]]
"""Runs one job. Its effects must be idempotent (a job runs at least once); it may call ``queue.finish`` as the
last step of the transaction that stores its result, else the worker marks the job done after it returns."""

COALESCE_SECONDS = 0.02
"""After a job finishes without a successor, wait this long for others to finish too, so they share one claim."""


class JobFailed(Exception):
    """A handler's way to ask for a retry after ``delay`` seconds (None: the usual backoff)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Worker:
    def __init__(self, db: Database, handlers: dict[str, Handler], *, concurrency: int = 8,
                 lease_seconds: float = 60.0, poll_seconds: float = 0.5, grace_seconds: float = 10.0,
                 closers: Sequence[Callable[[], Awaitable[None]]] = (),
                 sweeps: Sequence[Callable[[], Awaitable[object]]] = (), sweep_seconds: float = 30.0) -> None:
        self.db = db
        self.handlers = handlers
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.closers = list(closers)
        self.sweeps = list(sweeps)
        """Periodic passes (promises falling due, turns past their wait): safe to run in every worker at once."""
        self.sweep_seconds = sweep_seconds
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: dict[asyncio.Task[None], Job] = {}
        self._relay = queue.Relay(self.id, list(handlers), lease_seconds)

    def wake(self) -> None:
        """New work was queued in this process: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._renew_leases())
        sweeper = asyncio.create_task(self._sweep_loop()) if self.sweeps else None
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                claimed = await self._fill()
                if claimed and len(self._running) < self.concurrency:
                    continue  # there may be more ready work than one claim took
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except asyncio.TimeoutError:
                    continue
                await asyncio.sleep(COALESCE_SECONDS)
            await self._drain()
        finally:
            heartbeat.cancel()
            if sweeper is not None:
                sweeper.cancel()
            await self.aclose()

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Work until no job is ready or running (tests and the demo)."""
        async def loop() -> None:
            while True:
                await self._fill()
                if not self._running:
                    return
                await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
                await asyncio.sleep(COALESCE_SECONDS)

        await asyncio.wait_for(loop(), timeout)

    async def aclose(self) -> None:
        await self._release(self._relay.close())
        for close in self.closers:
            await close()
        self.closers.clear()

    async def _fill(self) -> int:
        """Claim jobs for the free slots and start them; the number claimed."""
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        try:
            jobs = await queue.claim(self.db, self.id, list(self.handlers), free, self.lease_seconds)
        except Exception:  # the database may be briefly unavailable; keep the worker alive
            log.exception("claiming jobs failed")
            return 0
        self._start(jobs)
        return len(jobs)

    def _start(self, jobs: list[Job]) -> None:
        for job in jobs:
            task = asyncio.create_task(self._run_one(job))
            self._running[task] = job
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await queue.extend_leases(self.db, self.id, [job.id for job in self._running.values()],
                                          self.lease_seconds)
            except Exception:
                log.exception("renewing leases failed")

    async def sweep_once(self) -> None:
        """Run every sweep once; one failing does not stop the others."""
        for sweep in self.sweeps:
            try:
                await sweep()
            except Exception:  # the database may be briefly unavailable; the next pass tries again
                log.exception("sweep %s failed", getattr(sweep, "__name__", sweep))
        self._wake.set()  # a sweep may have queued work

    async def _sweep_loop(self) -> None:
        while True:
            await self.sweep_once()
            await asyncio.sleep(self.sweep_seconds)

    async def _drain(self) -> None:
        if not self._running:
            return
        done, pending = await asyncio.wait(list(self._running), timeout=self.grace_seconds)
        leftover = [self._running[t] for t in pending if t in self._running]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        leftover += self._relay.close()
        await self._release(leftover)
        log.info("worker %s stopped: %d finished, %d handed back", self.id, len(done), len(leftover))

    async def _run_one(self, job: Job) -> None:
        """Run the job and write its outcome. When even that write fails (the database went away while the job
        ran), the job comes back to a worker when its lease runs out, as if this worker had died; a successor
        handed over to it, if any, does too. Nothing is lost, and no task ends with an error nobody reads."""
        try:
            await self._run_and_record(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._relay.take(job)  # their leases are not renewed either: they come back with the job
            log.exception("job %s (%s #%s): its outcome could not be written; it runs again when its lease runs out",
                          job.id, job.kind, job.subject_id)

    async def _run_and_record(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        try:
            await handler(job)
            if job.status != "done":
                await self.db.run_write(queue.finish, job)
        except asyncio.CancelledError:
            raise  # a successor already handed over stays with the relay, released when the worker stops
        except JobFailed as exc:
            status = await queue.retry_or_bury(self.db, job, str(exc), exc.delay)
            log.warning("job %s (%s #%s) failed, now %s: %s", job.id, job.kind, job.subject_id, status, exc)
        except Exception as exc:
            log.exception("job %s (%s #%s) crashed", job.id, job.kind, job.subject_id)
            await queue.retry_or_bury(self.db, job, f"{type(exc).__name__}: {exc}")
        else:
            if not self._stopping.is_set():
                self._start(self._relay.take(job))
                return
        # failed after its finish was written (or stopping): its successor, if it got one, goes back unharmed
        await self._release(self._relay.take(job))

    async def _release(self, jobs: list[Job]) -> None:
        if jobs:
            await queue.release(self.db, jobs)
