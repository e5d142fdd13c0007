"""Drafting end to end on SQLite and (with ``BENCH_DATABASE_URL``) PostgreSQL: 2,000 waiting turns, drafted by
one and then by two ``assistant worker`` processes (as a PostgreSQL deployment runs them), each with 32 drafts
in flight, on a fresh store each time.

The fake model answers every request after a fixed second, in its own process, so the CPU time measured here is
the workers' alone: claiming the job, reading the turn and history, rendering, the client, the policy check and
storing. The baseline is the ideal for that latency and bound: 32 drafts/s per worker process. The rate is
taken from the first draft stored to the last, so a worker's start (imports, first connections) is not in it;
the CPU per draft likewise counts from the first draft. Targets (issue 2): >= 28 drafts/s per worker and
<= 15 ms of CPU per draft."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import Connection, func, select

from assistant.auth import service as auth
from assistant.db import Database
from assistant.db.migrate import upgrade
from assistant.db.turns import Turn
from assistant.mentions.service import ingest, validate
from bench.bench_drafting_client import _fake_model_process
from bench.bench_ingest import PYTHON, ROOT, cpu_seconds, env_for, peak_rss_mb
from bench.databases import Engine, analyze, engines

TURNS = 2000
IN_FLIGHT = 32
MODEL_LATENCY_SECONDS = 1.0
DEADLINE_SECONDS = 600


def run() -> Iterator[str]:
    ideal = IN_FLIGHT / MODEL_LATENCY_SECONDS
    yield (f"{TURNS:,} turns, {IN_FLIGHT} drafts in flight per worker process, model answers after "
           f"{MODEL_LATENCY_SECONDS:g} s; baseline: the ideal, {ideal:.0f} drafts/s per worker process")
    with tempfile.TemporaryDirectory(prefix="bench-drafting-") as tmp, \
            _fake_model_process(MODEL_LATENCY_SECONDS) as model_url:
        for workers in (1, 2):
            for engine in engines(Path(tmp), f"drafting-{workers}"):
                yield _measure(engine, workers, model_url, ideal * workers, Path(tmp))


def _measure(engine: Engine, workers: int, model_url: str, ideal: float, workdir: Path) -> str:
    """A fresh store's turns drafted by ``workers`` worker processes; their log files kept in ``workdir``."""
    upgrade(engine.url)
    asyncio.run(_seed(engine.url))
    analyze(engine)
    env = env_for(engine.url) | {"ASSISTANT_LLM_BASE_URL": model_url, "ASSISTANT_LLM_MODEL": "bench-model",
                                 "ASSISTANT_LLM_MAX_IN_FLIGHT": str(IN_FLIGHT), "ASSISTANT_JOB_LEASE_SECONDS": "600"}
    logs = [workdir / f"{engine.name}-{workers}-worker{n}.log" for n in range(workers)]
    with ExitStack() as files:
        processes = [subprocess.Popen([PYTHON, "-m", "assistant", "worker", "--concurrency", str(IN_FLIGHT)],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                      stderr=files.enter_context(log.open("wb")))
                     for log in logs]
        try:
            started = time.perf_counter()
            first, last, first_count, cpu_used = asyncio.run(_watch(engine.url, processes, logs))
            rss = max(peak_rss_mb(p.pid) for p in processes)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(20)
    rate = (TURNS - first_count) / (last - first)
    return (f"{engine.name}, {workers} worker process(es): {rate:6.2f} drafts/s from the first draft to the last "
            f"({rate / ideal:.0%} of the ideal {ideal:.0f}/s; {last - started:.1f} s from the workers' start), "
            f"worker CPU {cpu_used / (TURNS - first_count) * 1000:.2f} ms per draft, peak RSS {rss:.0f} MB  "
            f"[target >= 28 drafts/s per worker, <= 15 ms]")


async def _seed(url: str) -> None:
    """A brand and TURNS people with one mention each, written in the last TURNS seconds: TURNS turns waiting for
    a draft, each with its drafting job queued. Older mentions would make the workers' sweeps report their turns
    overdue meanwhile (``memory/left_behind``), work that is not drafting."""
    db = Database(url)
    try:
        brand = await db.run_write(auth.create_brand, "bench", "Bench")
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=TURNS)  # recent: no turn overdue yet
        mentions = [validate({"platform": "x", "external_id": str(n), "text": f"@bench where is order {n}?",
                              "created_at": (start + dt.timedelta(seconds=n)).isoformat(),
                              "author": {"handle": f"@person{n}", "display_name": f"Person {n}"}})
                    for n in range(TURNS)]
        for first in range(0, TURNS, 500):
            await ingest(db, brand.id, mentions[first:first + 500])
    finally:
        await db.dispose()


def _drafted(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(Turn).where(Turn.status != "drafting")).scalar_one()


async def _watch(url: str, processes: list[subprocess.Popen[bytes]],
                 logs: list[Path]) -> tuple[float, float, int, float]:
    """Poll until every turn is drafted: when the first drafts and the last were seen, how many the first poll
    found, and the workers' CPU seconds between the two."""
    db = Database(url)
    try:
        deadline = time.perf_counter() + DEADLINE_SECONDS
        first, first_count, cpu_at_first = 0.0, 0, 0.0
        while True:
            drafted = await db.run_read(_drafted)
            now = time.perf_counter()
            if drafted and not first:
                first, first_count = now, drafted
                cpu_at_first = sum(cpu_seconds(p.pid) for p in processes)
            if drafted >= TURNS:
                return first, now, first_count, sum(cpu_seconds(p.pid) for p in processes) - cpu_at_first
            for process, log in zip(processes, logs):
                if process.poll() is not None:
                    raise SystemExit(f"a worker exited ({process.returncode}): {log.read_text()[-2000:]}")
            if now > deadline:
                raise SystemExit(f"only {drafted} of {TURNS} turns drafted after {DEADLINE_SECONDS} s")
            await asyncio.sleep(0.05)
    finally:
        await db.dispose()


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
