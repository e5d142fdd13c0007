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

from sqlalchemy import Connection, and_, bindparam, or_, select, update

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
                                       any_of(Job.subject_id, "subjects"))
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


def _claim(conn: Connection, worker_id: str, kinds: list[str], limit: int, lease_seconds: float) -> list[Job]:
    """The jobs come back as detached ``Job`` objects (plain values, no session behind them)."""
    now = utcnow()
    ready = and_(Job.kind.in_(kinds), or_(
        and_(Job.status == "queued", Job.run_after <= now),
        and_(Job.status == "running", Job.lease_until < now)))
    query = claimable(select(_JOBS).where(ready).order_by(Job.run_after, Job.id).limit(limit))
    rows = conn.execute(query).mappings().all()
    if not rows:
        return []
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    conn.execute(update(_JOBS).where(_JOBS.c.id.in_([row["id"] for row in rows])).values(
        status="running", attempts=_JOBS.c.attempts + 1, lease_until=lease_until, locked_by=worker_id,
        updated_at=now))
    return [Job(**dict(row, status="running", attempts=row["attempts"] + 1, lease_until=lease_until,
                       locked_by=worker_id, updated_at=now)) for row in rows]


_FINISH = update(_JOBS).where(_JOBS.c.id == bindparam("job_id"), _JOBS.c.locked_by == bindparam("worker_id"),
                              _JOBS.c.status == "running").values(
    status="done", lease_until=None, updated_at=bindparam("now", type_=_JOBS.c.updated_at.type))


def finish(conn: Connection, job: Job) -> bool:
    """Mark done, if this worker still holds the lease. False means another worker took the job over."""
    result = conn.execute(_FINISH, {"job_id": job.id, "worker_id": job.locked_by, "now": utcnow()})
    finished = result.rowcount == 1
    if finished:
        job.status = "done"
    return finished


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
