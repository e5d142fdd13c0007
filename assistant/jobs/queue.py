"""The jobs table as a queue: enqueue inside the caller's transaction, claim with a lease, finish or retry.

Claims are exclusive: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and on SQLite the claim runs inside a
``BEGIN IMMEDIATE`` write transaction. A job whose lease ran out (its worker died) is claimed again; a job
that keeps failing backs off and ends ``dead`` with its last error, visible to operators.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.bulk import executemany
from assistant.db.locking import claimable
from assistant.db.lookup import any_of
from assistant.db.jobs import Job

DRAFT_TURN = "draft_turn"
REDRAFT_FALLBACK = "redraft_fallback"
"""A fallback draft written while the model was down, drafted again by the model once it answers."""
DELIVER_WEBHOOK = "deliver_webhook"


_QUEUED = select(Job.subject_id).where(Job.kind == bindparam("kind"), Job.status == "queued",
                                       any_of(Job.subject_id, "subjects", joined=True))
"""Built once: building it per call was a third of a single-mention ingest transaction's Python time."""


def enqueue(conn: Connection, kind: str, subject_ids: Iterable[int], *, brand_id: int | None,
               payload: dict[str, Any] | None = None, run_after: dt.datetime | None = None,
               max_attempts: int = 6, skip_if_queued: bool = True) -> None:
    """Queue one job per subject, in the caller's transaction. With ``skip_if_queued``, a subject that already
    has a queued job of the same kind gets no second one (a running job does not count: it may be working on
    older facts)."""
    subjects = list(dict.fromkeys(subject_ids))
    if not subjects:
        return
    if skip_if_queued:
        queued = set(conn.execute(_QUEUED, {"kind": kind, "subjects": subjects}).scalars())
        subjects = [s for s in subjects if s not in queued]
    now = utcnow()
    executemany(conn, Job.__table__, [
        {"kind": kind, "brand_id": brand_id, "subject_id": s, "payload": payload or {}, "status": "queued",
         "attempts": 0, "max_attempts": max_attempts, "run_after": run_after or now, "created_at": now,
         "updated_at": now} for s in subjects])


async def claim(db: Database, worker_id: str, kinds: Sequence[str], limit: int, lease_seconds: float) -> list[Job]:
    """Take up to ``limit`` ready jobs (queued and due, or running with an expired lease)."""
    return await db.run_write(_claim, worker_id, list(kinds), limit, lease_seconds)


_JOBS = Job.__table__


def _taking(status: str, ready: Any) -> Any:
    """Lease the oldest ``limit`` jobs of ``status`` that are ``ready``, returning them, in one statement: a
    select of the ids that walks ``ix_jobs_ready`` in order and stops at the limit (``FOR UPDATE SKIP LOCKED``
    on PostgreSQL), inside the update. Built once: building a claim took more time than running it, and a
    worker claims once per finished job (``Relay``)."""
    ids = claimable(select(_JOBS.c.id).where(any_of(_JOBS.c.kind, "kinds"), _JOBS.c.status == status, ready)
                    .order_by(_JOBS.c.run_after, _JOBS.c.id).limit(bindparam("limit")))
    return update(_JOBS).where(_JOBS.c.id.in_(ids.scalar_subquery())).values(
        status="running", attempts=_JOBS.c.attempts + 1,
        lease_until=bindparam("until", type_=_JOBS.c.lease_until.type), locked_by=bindparam("worker"),
        updated_at=bindparam("at", type_=_JOBS.c.updated_at.type)).returning(*_JOBS.c)


_TAKE_ORPHANED = _taking("running", _JOBS.c.lease_until < bindparam("now"))
"""Jobs whose worker died (running, lease expired): they have waited longest, so they are taken first."""
_TAKE_DUE = _taking("queued", _JOBS.c.run_after <= bindparam("now"))
"""Queued and due. Apart from the orphans' statement: as one statement with OR, the database read and sorted
every queued job to take the first few (a backlog made every claim slow)."""


def _claim(conn: Connection, worker_id: str, kinds: list[str], limit: int, lease_seconds: float, *,
           orphans: bool = True) -> list[Job]:
    """The jobs come back as detached ``Job`` objects (plain values, no session behind them), oldest first.
    Without ``orphans``, only queued jobs (a relay's: the worker's next claim finds the orphans)."""
    now = utcnow()
    params = {"kinds": kinds, "now": now, "limit": limit, "worker": worker_id, "at": now,
              "until": now + dt.timedelta(seconds=lease_seconds)}
    rows = list(conn.execute(_TAKE_ORPHANED, params).mappings()) if orphans else []
    if len(rows) < limit:
        rows += conn.execute(_TAKE_DUE, dict(params, limit=limit - len(rows))).mappings()
    return [Job(**row) for row in sorted(rows, key=lambda row: (row["run_after"], row["id"]))]


_FINISH = update(_JOBS).where(_JOBS.c.id == bindparam("job_id"), _JOBS.c.locked_by == bindparam("worker_id"),
                              _JOBS.c.status == "running").values(
    status="done", lease_until=None, updated_at=bindparam("now", type_=_JOBS.c.updated_at.type))


def finish(conn: Connection, job: Job) -> bool:
    """Mark done, if this worker still holds the lease. False means another worker took the job over.

    If the worker holding the lease relays (``Relay``), the next ready job is claimed for it in this same
    transaction, so finish is the transaction's last statement."""
    result = conn.execute(_FINISH, {"job_id": job.id, "worker_id": job.locked_by, "now": utcnow()})
    finished = result.rowcount == 1
    if finished:
        job.status = "done"
        relay = _RELAYS.get(job.locked_by or "")
        if relay is not None:
            relay.handed[job.id] = _claim(conn, relay.worker_id, relay.kinds, 1, relay.lease_seconds, orphans=False)
    return finished


class Relay:
    """A worker's standing order: when one of its jobs finishes, claim its successor in the finishing
    transaction and hand it over (``take``), so the freed slot is refilled at once and without a claim
    transaction of its own.

    Claiming only after jobs finished left the claim queued behind every write that was waiting, so it took all
    the slots freed meanwhile at once; the jobs it started then came back from the model together and the
    worker ran in lockstep waves (32 jobs per claim instead of about 4; drafting lost an eighth of its
    throughput: issue 9). A successor starts the moment its predecessor is done, so jobs stay spread out."""

    def __init__(self, worker_id: str, kinds: Sequence[str], lease_seconds: float) -> None:
        self.worker_id = worker_id
        self.kinds = list(kinds)
        self.lease_seconds = lease_seconds
        self.handed: dict[int, list[Job]] = {}
        """Successors claimed by a committed finish of the job with this id, not yet taken by the worker."""
        _RELAYS[worker_id] = self

    def take(self, job: Job) -> list[Job]:
        return self.handed.pop(job.id, [])

    def close(self) -> list[Job]:
        """Stop relaying; the successors handed over but never taken (to be released)."""
        _RELAYS.pop(self.worker_id, None)
        left = [successor for successors in self.handed.values() for successor in successors]
        self.handed.clear()
        return left


_RELAYS: dict[str, Relay] = {}
"""The relaying workers of this process, by worker id (a job's ``locked_by``); a closed relay is not here."""


async def extend_leases(db: Database, worker_id: str, job_ids: Sequence[int], lease_seconds: float) -> None:
    """A worker still busy with its jobs keeps them: a slow model call must not look like a dead worker."""
    if job_ids:
        await db.run_write(_extend_leases, worker_id, list(job_ids), lease_seconds)


def _extend_leases(conn: Connection, worker_id: str, job_ids: list[int], lease_seconds: float) -> None:
    conn.execute(update(_JOBS).where(_JOBS.c.id.in_(job_ids), _JOBS.c.locked_by == worker_id,
                                     _JOBS.c.status == "running").values(
        lease_until=utcnow() + dt.timedelta(seconds=lease_seconds)))


def backoff(attempts: int, base: float = 5.0, cap: float = 3600.0) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(0, attempts - 1)))


async def retry_or_bury(db: Database, job: Job, error: str, delay: float | None = None) -> str:
    """After a failure: queue again after ``delay`` (default: backoff), or mark dead when out of attempts."""
    now = utcnow()
    dead = job.attempts >= job.max_attempts
    values: dict[str, Any] = {"last_error": error[:2000], "lease_until": None, "locked_by": None, "updated_at": now}
    if dead:
        values["status"] = "dead"
    else:
        values["status"] = "queued"
        values["run_after"] = now + dt.timedelta(seconds=backoff(job.attempts) if delay is None else delay)
    await db.run_write(_set_if_held, job, values)
    return values["status"]


async def release(db: Database, jobs: Iterable[Job]) -> None:
    """Give leased jobs back unharmed (a worker shutting down): they run again at once elsewhere."""
    now = utcnow()
    for job in jobs:
        await db.run_write(_set_if_held, job, {"status": "queued", "attempts": _JOBS.c.attempts - 1,
                                               "lease_until": None, "locked_by": None, "run_after": now,
                                               "updated_at": now})


def _set_if_held(conn: Connection, job: Job, values: dict[str, Any]) -> None:
    """Change the job, unless another worker has taken it over since."""
    conn.execute(update(_JOBS).where(_JOBS.c.id == job.id, _JOBS.c.locked_by == job.locked_by).values(**values))


async def requeue_dead(db: Database, job_id: int) -> bool:
    return await db.run_write(_requeue_dead, job_id)


def _requeue_dead(conn: Connection, job_id: int) -> bool:
    now = utcnow()
    result = conn.execute(update(_JOBS).where(_JOBS.c.id == job_id, _JOBS.c.status == "dead").values(
        status="queued", attempts=0, run_after=now, updated_at=now))
    return result.rowcount == 1
