"""Ingest speed on SQLite and (with ``BENCH_DATABASE_URL``) PostgreSQL, with 1 and 2 server processes: single
mentions under `wrk` at 32 connections beside a bare Litestar JSON echo app with as many processes under the
same uvicorn settings, measured right before and after each figure (``Echoes``); 1,000-mention batches through the API (one client for one server process, two for two)
beside the same rows written by the database's plain driver alone (`sqlite3` `executemany`, asyncpg `COPY`). SQLite's single ingest also runs with
``synchronous=normal``, to show what durability costs. Targets (issues 2 and 14): >= 1,500 mentions/s with
p99 <= 50 ms and >= 40% of the echo of the same process count; batches >= 20,000 mentions/s on both; server
memory <= 250 MB."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import httpx

from assistant.model.local_model import free_port

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
T = TypeVar("T")
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))

LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  if counter == 1 then math.randomseed(os.time() * 100 + tid) end
  local author
  if AUTHORS > 0 then author = string.format("@p%d", math.random(0, AUTHORS - 1))
  else author = string.format("@u%d_%d", tid, counter % 500) end
  local body = string.format(
    '{"platform":"x","external_id":"%s-w%d-%d","text":"@acme my order %d is late","created_at":"2026-11-20T12:00:00Z",'
    .. '"author":{"handle":"%s","display_name":"User"}}', RUN, tid, counter, counter, author)
  return wrk.format("POST", PATH, {["Content-Type"]="application/json", ["Authorization"]=AUTH}, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration, latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50)))
end
"""

ECHO_APP = """
from typing import Any
from litestar import Litestar, post

@post("/echo", status_code=200)
async def echo(data: dict[str, Any]) -> dict[str, Any]:
    return data

app = Litestar([echo])
"""


def load_line(started: tuple[float, float, float]) -> str:
    """Other work on this 2-core machine skews every figure: say how busy it was."""
    end = os.getloadavg()
    return (f"machine load average (1/5/15 min): {started[0]:.2f}/{started[1]:.2f}/{started[2]:.2f} at the start, "
            f"{end[0]:.2f}/{end[1]:.2f}/{end[2]:.2f} at the end, {os.cpu_count()} cores")


def wait_up(port: int, path: str = "/healthz", timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def peak_rss_mb(pid: int) -> float:
    """The largest peak RSS of the process and its children (``serve --workers N`` forks its servers)."""
    peaks = []
    for each in _family(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return max(peaks, default=float("nan"))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) used so far by the process and its children; less disturbed by
    the machine's other work than requests per second."""
    ticks = 0
    for each in _family(pid):
        try:
            ticks += sum(map(int, Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()[11:13]))
        except (OSError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _family(pid: int) -> list[int]:
    return [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == pid]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def env_for(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_DATABASE_URL": db_url, "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000000000",
                "ASSISTANT_SECRET_KEY": "bench-secret-key-not-for-production",
                "PYTHONPATH": str(ROOT)})
    return env


@contextmanager
def assistant_server(db_url: str, *, worker: bool = False, processes: int = 1,
                     extra_env: dict[str, str] | None = None) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    args = [PYTHON, "-m", "assistant", "serve", "--port", str(port), "--workers", str(processes)] + \
        ([] if worker else ["--no-worker"])
    proc = subprocess.Popen(args, cwd=ROOT, env=env_for(db_url) | (extra_env or {}), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_up(port)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def echo_server(workdir: Path, processes: int = 1) -> Iterator[int]:
    (workdir / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "uvicorn", "echo_app:app", "--port", str(port), "--loop", "uvloop",
                             "--http", "httptools", "--log-level", "warning", "--no-access-log",
                             "--workers", str(processes)],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port, "/")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class Echoes:
    """The bare echo with 1 and 2 processes, kept running (idle) beside the benchmarks and measured right before
    and right after each figure judged against it. This machine's speed drifts: in one run the one-process echo
    answered 3,568 req/s at the start and 4,537 req/s eight minutes later, so a share of an echo measured once at
    the start moved by a quarter with the machine, not with the code."""

    def __init__(self, workdir: Path, ports: dict[int, int]) -> None:
        self.workdir, self.ports = workdir, ports

    def rate(self, processes: int) -> float:
        return wrk(self.ports[processes], "/echo", "none", self.workdir)[0]

    def around(self, processes: int, measure: Callable[[], T]) -> tuple[T, float, str]:
        """``measure()`` between two echo runs: its result, the echo (their mean) and the two, for the line."""
        before = self.rate(processes)
        result = measure()
        after = self.rate(processes)
        return result, (before + after) / 2, f"echo {before:,.0f} before, {after:,.0f} after"


@contextmanager
def echoes(workdir: Path) -> Iterator[Echoes]:
    with echo_server(workdir, 1) as one, echo_server(workdir, 2) as two:
        yield Echoes(workdir, {1: one, 2: two})


def wrk(port: int, path: str, token: str, workdir: Path, connections: int = 32,
        duration: int = DURATION, authors: int = 0) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, errors). Mentions come from 1,000 authors of this run (new people), or with
    ``authors``, from handles ``p0`` to ``p{authors - 1}`` at random (the people of a bench store)."""
    script = workdir / f"post_{port}.lua"
    script.write_text(f'PATH = "{path}"\nAUTH = "Bearer {token}"\nRUN = "r{port}-{time.time_ns()}"\n'
                      f'AUTHORS = {authors}\n' + LUA)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert found, out
    requests, micros, p99, errors, p50 = map(int, found.groups())
    return requests / (micros / 1e6), p50 / 1000, p99 / 1000, errors


def setup_brand(db_url: str) -> str:
    """Migrate a fresh file, make a brand and an ingest+read key; answers the key."""
    from assistant.db.migrate import upgrade

    upgrade(db_url)
    return brand_key(db_url, create=True)


def brand_key(db_url: str, *, create: bool = False) -> str:
    """A new ingest+read key of the brand ``bench`` (made first when ``create``)."""
    from sqlalchemy import Connection, select

    from assistant.auth import service as auth
    from assistant.db import Database
    from assistant.db.tenancy import Brand

    def issue(conn: Connection) -> str:
        brand_id = auth.create_brand(conn, "bench", "Bench").id if create else \
            conn.execute(select(Brand.id).where(Brand.slug == "bench")).scalar_one()
        return auth.create_api_key(conn, brand_id, ["ingest", "read"]).token

    async def make() -> str:
        db = Database(db_url)
        try:
            return await db.run_write(issue)
        finally:
            await db.dispose()

    return asyncio.run(make())


def batch_bodies(batches: int, size: int = 1000, run: str = "b") -> list[bytes]:
    return [json.dumps({"mentions": [
        {"platform": "x", "external_id": f"{run}{b}-{n}", "text": f"@acme batch {b} item {n} is late",
         "created_at": "2026-11-20T12:00:00Z", "author": {"handle": f"@batch{(b * size + n) % 5000}"}}
        for n in range(size)]}).encode() for b in range(batches)]


def sqlite_baseline(workdir: Path, bodies: list[bytes]) -> float:
    """Plain sqlite3: the same rows into the same interactions table, one executemany per batch."""
    path = workdir / "baseline.db"
    setup_brand(f"sqlite+aiosqlite:///{path}")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("INSERT INTO people (brand_id, display_name, do_not_reply, first_seen_at, last_seen_at, "
                "mention_count, reply_count, created_at) VALUES (1, 'x', 0, '2026-01-01', '2026-01-01', 0, 0, "
                "'2026-01-01')")
    started = time.perf_counter()
    total = 0
    for body in bodies:
        items = json.loads(body)["mentions"]
        rows = [(1, 1, "inbound", m["platform"], m["external_id"], m["text"], m["created_at"], m["created_at"],
                 json.dumps(m)) for m in items]
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO interactions (brand_id, person_id, direction, platform, external_id, text, "
                        "occurred_at, received_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
        total += len(rows)
    elapsed = time.perf_counter() - started
    con.close()
    return total / elapsed


def postgres_baseline(url: str, bodies: list[bytes]) -> float:
    """asyncpg alone: the same rows into the same interactions table, one COPY per batch in a transaction."""
    import asyncpg

    async def work() -> float:
        conn = await asyncpg.connect(url)
        try:
            person = await conn.fetchval(
                "INSERT INTO people (brand_id, display_name, do_not_reply, first_seen_at, last_seen_at, mention_count, "
                "reply_count, created_at) VALUES (1, 'x', false, now(), now(), 0, 0, now()) RETURNING id")
            started = time.perf_counter()
            total = 0
            for body in bodies:
                items = json.loads(body)["mentions"]
                at = dt.datetime(2026, 11, 20, 12)  # the columns hold naive UTC
                rows = [(1, person, "inbound", m["platform"], "base-" + m["external_id"], m["text"], at, at,
                         json.dumps(m)) for m in items]
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "interactions", records=rows, columns=["brand_id", "person_id", "direction", "platform",
                                                               "external_id", "text", "occurred_at", "received_at",
                                                               "raw"])
                total += len(rows)
            return total / (time.perf_counter() - started)
        finally:
            await conn.close()

    return asyncio.run(work())


def batch_ingest(port: int, token: str, clients: int = 1) -> tuple[float, int, float]:
    """(mentions/s, accepted, seconds) for 30 1,000-mention batches through the API, each client sending its
    share one after another."""
    bodies = batch_bodies(30, run=f"c{clients}-")  # new mentions of known people in each run
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    accepted = [0] * clients

    def send(client_no: int, share: list[bytes]) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for body in share:
                response = client.post("/api/v1/mentions/batch", content=body, headers=headers)
                response.raise_for_status()
                accepted[client_no] += sum(r["status"] == "accepted" for r in response.json()["results"])

    warm = batch_bodies(1, run=f"warm{clients}-")[0]
    httpx.post(f"http://127.0.0.1:{port}/api/v1/mentions/batch", content=warm, headers=headers, timeout=60)
    started = time.perf_counter()
    threads = [threading.Thread(target=send, args=(n, bodies[n::clients])) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return sum(accepted) / elapsed, sum(accepted), elapsed


def single_line(label: str, port: int, token: str, workdir: Path, echo: Echoes, processes: int, pid: int) -> str:
    def measure() -> tuple[tuple[float, float, float, int], float]:
        before = cpu_seconds(pid)
        figures = wrk(port, "/api/v1/mentions", token, workdir)
        return figures, cpu_seconds(pid) - before

    ((rate, p50, p99, errors), used), echo_rate, echo_line = echo.around(processes, measure)
    cpu_us = used / max(1.0, rate * DURATION) * 1e6
    return (f"{label}: single mentions, wrk 32 conn {DURATION}s: {rate:,.0f} mentions/s ({rate / echo_rate:.0%} of "
            f"the echo; {echo_line}), p50 {p50:.1f} ms, p99 {p99:.1f} ms, non-2xx/errors {errors}, server CPU "
            f"{cpu_us:,.0f} µs per mention  [target >= 1,500/s, p99 <= 50 ms, >= 40% of echo]")


def run() -> Iterator[str]:
    from bench.databases import analyze, engines

    started_load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, echoes(Path(tmp)) as echo:
        workdir = Path(tmp)
        for processes in (1, 2):
            rate, p50, p99, errors = wrk(echo.ports[processes], "/echo", "none", workdir)
            yield (f"baseline: bare Litestar JSON echo, {processes} process(es), wrk 32 conn {DURATION}s: "
                   f"{rate:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors} (and measured again "
                   f"right before and after each single-ingest figure below)")
        for engine in engines(workdir, "ingest"):
            token = setup_brand(engine.url)
            with assistant_server(engine.url) as (port, _):  # a first batch, then planner statistics
                httpx.post(f"http://127.0.0.1:{port}/api/v1/mentions/batch", timeout=60,
                           content=batch_bodies(1, run="first-")[0],
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            analyze(engine)
            runs = [(1, {}), (2, {})]
            if engine.is_sqlite:
                runs.insert(1, (1, {"ASSISTANT_SQLITE_SYNCHRONOUS": "normal"}))
            rss = 0.0
            for processes, extra in runs:
                with assistant_server(engine.url, processes=processes, extra_env=extra) as (port, proc):
                    label = (f"{engine.name}, {processes} serve --no-worker"
                             + (", synchronous=normal" if extra else ""))
                    yield single_line(label, port, token, workdir, echo, processes, proc.pid)
                    if not extra:
                        analyze(engine)  # the single mentions grew the tables tenfold: autovacuum would analyze
                        rate, accepted, elapsed = batch_ingest(port, token, clients=processes)
                        yield (f"{engine.name}, {processes} serve: batches of 1,000 through the API ({processes} "
                               f"client(s), each sending one batch after another): {rate:,.0f} mentions/s "
                               f"({accepted:,} in {elapsed:.1f} s)  [target >= 20,000/s; PostgreSQL >= SQLite's]")
                    rss = max(rss, peak_rss_mb(proc.pid))
            bodies = batch_bodies(30)
            if engine.is_sqlite:
                yield (f"baseline: plain sqlite3 executemany of the same rows: "
                             f"{sqlite_baseline(workdir, bodies):,.0f} rows/s")
            else:
                yield (f"baseline: asyncpg COPY of the same rows, a transaction per batch: "
                             f"{postgres_baseline(engine.plain_url, bodies):,.0f} rows/s")
            yield (f"{engine.name}: server peak RSS (VmHWM): {rss:.0f} MB  [target <= 250 MB]")
    yield (load_line(started_load))


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
