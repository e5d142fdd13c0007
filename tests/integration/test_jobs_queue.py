"""The jobs table as a queue: exclusive claims with leases, takeover after a lease ends, backoff, dead jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, select, text, update

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.jobs import Job
from assistant.jobs import queue
from assistant.jobs.worker import JobFailed, Worker
from tests.support.db import execute, one, rows, scalars


async def _queue_jobs(db: Database, n: int, kind: str = "test") -> None:
    await db.run_write(lambda conn: queue.enqueue(conn, kind, range(1, n + 1), brand_id=None, max_attempts=3))


async def test_a_subject_with_a_queued_job_gets_no_second_one(db: Database) -> None:
    await _queue_jobs(db, 3)
    await _queue_jobs(db, 3)
    assert len(await rows(db, select(Job))) == 3


@pytest.mark.postgres
async def test_the_already_queued_lookup_never_compares_every_job_with_every_subject(db: Database) -> None:
    """asyncpg prepares each statement, and PostgreSQL may keep a generic plan made for a list of ten values. On a
    small jobs table, with ``= ANY`` that plan scanned the table and compared each row with each of the 333
    subjects of a batch's part (6-12 ms a statement in the batch benchmark); the list must be joined instead."""
    await _queue_jobs(db, 200, kind=queue.DRAFT_TURN)
    await db.run_write(lambda conn: conn.exec_driver_sql("ANALYZE jobs"))

    def generic_plan(conn: Connection) -> Any:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE queued_lookup AS {queue._QUEUED.compile(dialect=conn.dialect)}")
        subjects = "{" + ",".join(map(str, range(1, 301))) + "}"
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE queued_lookup('{queue.DRAFT_TURN}', 'queued', "
                                    f"'{subjects}')").scalar()
        conn.exec_driver_sql("DEALLOCATE queued_lookup")  # the pooled connection outlives this test
        return plan

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node] + [each for child in node.get("Plans", []) for each in nodes(child)]

    plan = nodes((await db.run_write(generic_plan))[0]["Plan"])
    assert not [n for n in plan if "ANY" in n.get("Filter", "") or "Join Filter" in n], plan
    found = await db.run_read(lambda conn: sorted(conn.execute(
        queue._QUEUED, {"kind": queue.DRAFT_TURN, "subjects": [5, 150, 999]}).scalars()))
    assert found == [5, 150]


async def test_concurrent_claims_never_hand_out_a_job_twice(db: Database) -> None:
    await _queue_jobs(db, 60)
    other = Database(db.url)  # a second process's engine
    try:
        batches = await asyncio.gather(*[queue.claim(d, f"w{i}", ["test"], 7, 30)
                                         for i, d in enumerate([db, other] * 6)])
    finally:
        await other.dispose()
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == len(set(claimed)) == 60


async def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_finish(db: Database) -> None:
    await _queue_jobs(db, 1)
    [first] = await queue.claim(db, "dead-worker", ["test"], 1, 30)
    assert await queue.claim(db, "other", ["test"], 1, 30) == []
    await execute(db, update(Job).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    [second] = await queue.claim(db, "other", ["test"], 1, 30)
    assert second.id == first.id and second.attempts == 2
    assert await db.run_write(queue.finish, first) is False
    assert await db.run_write(queue.finish, second) is True


async def test_a_failing_job_backs_off_then_ends_dead_with_its_last_error(db: Database) -> None:
    await _queue_jobs(db, 1)
    calls = 0

    async def always_fails(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise JobFailed(f"receiver said no ({calls})", delay=0)

    await Worker(db, {"test": always_fails}).run_until_idle(timeout=10)
    job = await one(db, select(Job))
    assert calls == 3
    assert job.status == "dead" and job.last_error == "receiver said no (3)"
    assert await queue.requeue_dead(db, job.id) is True


_REFUSE_JOB_UPDATES = {
    "sqlite": ["CREATE TRIGGER jobs_refused BEFORE UPDATE ON jobs BEGIN SELECT RAISE(ABORT, 'refused'); END"],
    "postgresql": ["CREATE FUNCTION jobs_refused() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
                   "CREATE TRIGGER jobs_refused BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_refused()"],
}
_ALLOW_JOB_UPDATES = {
    "sqlite": ["DROP TRIGGER IF EXISTS jobs_refused"],
    "postgresql": ["DROP TRIGGER IF EXISTS jobs_refused ON jobs", "DROP FUNCTION IF EXISTS jobs_refused()"],
}


async def test_a_job_whose_outcome_cannot_be_written_comes_back_after_its_lease(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """The handler crashes, and writing that down fails too (the soak saw it as PostgreSQL restarted; here a
    trigger refuses every change of a job). The job's task ends quietly (before, its error was left in the task
    for asyncio to complain about); the job is still held, and runs again once its lease runs out."""
    await _queue_jobs(db, 1)
    worker = Worker(db, {})
    [job] = await queue.claim(db, worker.id, ["test"], 1, 30)

    async def crashes_while_the_database_refuses(job: Job) -> None:
        await execute(db, *(text(sql) for sql in _REFUSE_JOB_UPDATES[db.dialect]))
        raise RuntimeError("the handler broke")

    worker.handlers["test"] = crashes_while_the_database_refuses
    try:
        await worker._run_one(job)
    finally:
        await execute(db, *(text(sql) for sql in _ALLOW_JOB_UPDATES[db.dialect]))
    assert "its outcome could not be written; it runs again when its lease runs out" in caplog.text
    held = await one(db, select(Job))
    assert (held.status, held.locked_by, held.attempts) == ("running", worker.id, 1)
    await execute(db, update(Job).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    [again] = await queue.claim(db, "other", ["test"], 1, 30)
    assert (again.id, again.attempts) == (job.id, 2)


async def test_a_handler_that_succeeds_finishes_its_job(db: Database) -> None:
    await _queue_jobs(db, 5)
    seen: list[int] = []

    async def handle(job: Job) -> None:
        seen.append(job.subject_id or 0)

    await Worker(db, {"test": handle}, concurrency=2).run_until_idle(timeout=10)
    statuses = set(await scalars(db, select(Job.status)))
    assert sorted(seen) == [1, 2, 3, 4, 5] and statuses == {"done"}


async def test_stopping_hands_back_jobs_that_did_not_finish_in_the_grace_time(db: Database) -> None:
    await _queue_jobs(db, 2)
    started = asyncio.Event()

    async def slow(job: Job) -> None:
        started.set()
        await asyncio.sleep(30)

    worker = Worker(db, {"test": slow}, concurrency=2, grace_seconds=0.1, poll_seconds=0.05)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    jobs = await rows(db, select(Job))
    assert {j.status for j in jobs} == {"queued"} and {j.attempts for j in jobs} == {0}


async def test_a_busy_worker_renews_its_leases_so_no_one_takes_its_jobs(db: Database) -> None:
    await _queue_jobs(db, 1)
    finished = asyncio.Event()

    async def slow(job: Job) -> None:
        await asyncio.sleep(2.5)  # outlives the lease more than twice over
        finished.set()

    # renewed every third of the lease: a loaded machine that stalls the loop for 0.2 s let a 0.3 s lease lapse
    worker = Worker(db, {"test": slow}, lease_seconds=1.0, poll_seconds=0.05)
    task = asyncio.create_task(worker.run())
    stolen: list[Job] = []
    while not finished.is_set():
        await asyncio.sleep(0.1)
        stolen += await queue.claim(db, "thief", ["test"], 1, 30)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert stolen == []
    assert await scalars(db, select(Job.status)) == ["done"]


async def test_a_finished_job_frees_its_slot_at_once_not_at_the_next_poll(db: Database) -> None:
    await _queue_jobs(db, 6)
    started: list[float] = []
    loop = asyncio.get_running_loop()

    async def quick(job: Job) -> None:
        started.append(loop.time())
        await asyncio.sleep(0.05)

    worker = Worker(db, {"test": quick}, concurrency=1, poll_seconds=5)
    task = asyncio.create_task(worker.run())
    while len(started) < 6:
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert started[-1] - started[0] < 2.0  # six jobs one at a time, far less than one poll interval


async def test_a_finishing_job_hands_its_slot_to_the_next_in_the_same_transaction(db: Database, monkeypatch) -> None:
    """Issue 9: claims made only after jobs finished queued behind every waiting write and took all the freed
    slots at once, so drafting ran in lockstep waves. Each finish now claims its successor itself: six jobs on
    two slots need the first claim and at most two more that find nothing left, never one per pair of jobs."""
    await _queue_jobs(db, 6)
    claims: list[int] = []
    claim = queue.claim

    async def counted(*args, **kwargs):
        found = await claim(*args, **kwargs)
        claims.append(len(found))
        return found

    monkeypatch.setattr(queue, "claim", counted)
    ran: list[int] = []

    async def handle(job: Job) -> None:
        ran.append(job.subject_id or 0)
        await asyncio.sleep(0.01 * (job.subject_id or 0))  # finishing at different times, as model answers do

    await Worker(db, {"test": handle}, concurrency=2).run_until_idle(timeout=10)
    assert sorted(ran) == [1, 2, 3, 4, 5, 6]
    assert claims[0] == 2 and sum(claims) == 2 and len(claims) <= 3
    assert set(await scalars(db, select(Job.status))) == {"done"}


async def test_a_successor_handed_to_a_stopping_worker_goes_back_unharmed(db: Database) -> None:
    await _queue_jobs(db, 2)
    worker = Worker(db, {"test": lambda job: asyncio.sleep(0)}, concurrency=1)
    [first] = await queue.claim(db, worker.id, ["test"], 1, 30)
    assert await db.run_write(queue.finish, first) is True  # claims the second job for the worker
    await worker.aclose()  # stops relaying and releases what it was handed but never started
    jobs = {job.subject_id: job for job in await rows(db, select(Job))}
    assert jobs[1].status == "done"
    assert jobs[2].status == "queued" and jobs[2].attempts == 0 and jobs[2].locked_by is None
    [again] = await queue.claim(db, "other", ["test"], 1, 30)
    assert again.subject_id == 2 and await db.run_write(queue.finish, again) is True
    assert await scalars(db, select(Job.status)) == ["done", "done"]


async def test_a_claim_takes_the_oldest_ready_jobs_whether_queued_or_left_by_a_dead_worker(db: Database) -> None:
    await _queue_jobs(db, 3)
    [orphan] = await queue.claim(db, "dead-worker", ["test"], 1, 30)
    await execute(db, update(Job).where(Job.id == orphan.id).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    later = utcnow() + dt.timedelta(hours=1)
    await execute(db, update(Job).where(Job.subject_id == 3).values(run_after=later))  # not due yet
    claimed = await queue.claim(db, "other", ["test"], 5, 30)
    assert [job.subject_id for job in claimed] == [1, 2]  # the orphan first (oldest), job 3 not yet due
    assert claimed[0].attempts == 2 and claimed[1].attempts == 1
    assert await queue.claim(db, "other", ["other-kind"], 5, 30) == []
