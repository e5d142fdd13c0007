"""History reads on SQLite and (with ``BENCH_DATABASE_URL``) PostgreSQL: 1,000,000 interactions over 200,000
people bulk-loaded (SQLite: Core executemany; PostgreSQL: asyncpg COPY), then `GET /api/v1/people/{id}/history`
for random people through the real server under `wrk` with 1 and 2 server processes (`serve --workers`),
and the server's peak memory. Then single-mention ingest on that 1M store (the store size as a dimension:
compare with the empty store of the ingest bench). Targets (issues 2 and 14): p99 <= 10 ms (<= 20 ms at 32
connections); >= 40% of the bare echo of the same process count; RSS <= 250 MB. Baselines: the same queries
through the plain driver (sqlite3, asyncpg), and the bare Litestar echo."""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine

from bench.bench_ingest import (DURATION, assistant_server, echo_server, load_line, peak_rss_mb, setup_brand,
                                single_line)
from bench.bench_ingest import wrk as wrk_post

PEOPLE = 200_000
INTERACTIONS = 1_000_000

LUA = r"""
math.randomseed(os.time() + (tid or 0))
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function request()
  return wrk.format("GET", "/api/v1/people/" .. math.random(FIRST, LAST) .. "/history?limit=50", {["Authorization"]=AUTH})
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration, latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    latency:percentile(50)))
end
"""


def load(path: Path) -> tuple[int, int, float]:
    from assistant.db.people import Handle, Interaction, Person

    engine = create_engine(f"sqlite:///{path}")
    base = dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        first = 1
        conn.execute(Person.__table__.insert(), [
            {"id": first + n, "brand_id": 1, "display_name": f"Person {n}", "do_not_reply": False,
             "first_seen_at": base, "last_seen_at": base, "mention_count": 5, "reply_count": 0, "created_at": base}
            for n in range(PEOPLE)])
        conn.execute(Handle.__table__.insert(), [
            {"brand_id": 1, "person_id": first + n, "platform": "x", "handle": f"p{n}", "created_at": base}
            for n in range(PEOPLE)])
        rng = random.Random(7)
        for start in range(0, INTERACTIONS, 100_000):
            conn.execute(Interaction.__table__.insert(), [
                {"brand_id": 1, "person_id": first + rng.randrange(PEOPLE), "direction": "inbound" if n % 3 else
                 "outbound", "platform": "x", "external_id": f"h{n}", "text": f"message {n} about an order",
                 "occurred_at": base + dt.timedelta(seconds=n * 60), "received_at": base, "raw": None}
                for n in range(start, start + 100_000)])
    engine.dispose()
    return first, first + PEOPLE - 1, time.perf_counter() - started


def wrk(port: int, token: str, first: int, last: int, workdir: Path, connections: int) -> tuple[float, float, float, int]:
    script = workdir / "history.lua"
    script.write_text(f'FIRST = {first}\nLAST = {last}\nAUTH = "Bearer {token}"\n' + LUA)
    out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{DURATION}s", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert found, out
    requests, micros, p99, errors, p50 = map(int, found.groups())
    return requests / (micros / 1e6), p50 / 1000, p99 / 1000, errors


def baseline(path: Path, first: int, last: int) -> float:
    con = sqlite3.connect(path)
    rng = random.Random(3)
    times = []
    for _ in range(2000):
        pid = rng.randint(first, last)
        t = time.perf_counter()
        con.execute("SELECT * FROM interactions WHERE person_id = ? ORDER BY occurred_at DESC, id DESC LIMIT 51",
                    (pid,)).fetchall()
        con.execute("SELECT * FROM notes WHERE person_id = ? ORDER BY created_at DESC, id DESC LIMIT 51",
                    (pid,)).fetchall()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[int(len(times) * 0.99)] * 1000


def load_postgres(url: str) -> tuple[int, int, float]:
    """The same store as ``load`` through asyncpg COPY, then ANALYZE."""
    import asyncio

    import asyncpg

    async def work() -> tuple[int, int, float]:
        conn = await asyncpg.connect(url)
        base = dt.datetime(2019, 1, 1)
        started = time.perf_counter()
        try:
            first = int(await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM people"))
            await conn.copy_records_to_table("people", columns=[
                "id", "brand_id", "display_name", "do_not_reply", "first_seen_at", "last_seen_at", "mention_count",
                "reply_count", "created_at"], records=[
                (first + n, 1, f"Person {n}", False, base, base, 5, 0, base) for n in range(PEOPLE)])
            await conn.copy_records_to_table("handles", columns=[
                "brand_id", "person_id", "platform", "handle", "created_at"], records=[
                (1, first + n, "x", f"p{n}", base) for n in range(PEOPLE)])
            rng = random.Random(7)
            for start in range(0, INTERACTIONS, 100_000):
                await conn.copy_records_to_table("interactions", columns=[
                    "brand_id", "person_id", "direction", "platform", "external_id", "text", "occurred_at",
                    "received_at"], records=[
                    (1, first + rng.randrange(PEOPLE), "inbound" if n % 3 else "outbound", "x", f"h{n}",
                     f"message {n} about an order", base + dt.timedelta(seconds=n * 60), base)
                    for n in range(start, start + 100_000)])
            for table in ("people", "handles", "interactions"):
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT max(id) FROM {table}))")
            await conn.execute("ANALYZE")
            return first, first + PEOPLE - 1, time.perf_counter() - started
        finally:
            await conn.close()

    return asyncio.run(work())


def postgres_baseline(url: str, first: int, last: int) -> float:
    import asyncio

    import asyncpg

    async def work() -> float:
        conn = await asyncpg.connect(url)
        rng = random.Random(3)
        times = []
        try:
            interactions = await conn.prepare("SELECT * FROM interactions WHERE person_id = $1 "
                                              "ORDER BY occurred_at DESC, id DESC LIMIT 51")
            notes = await conn.prepare("SELECT * FROM notes WHERE person_id = $1 "
                                       "ORDER BY created_at DESC, id DESC LIMIT 51")
            for _ in range(2000):
                pid = rng.randint(first, last)
                t = time.perf_counter()
                async with conn.transaction(readonly=True):
                    await interactions.fetch(pid)
                    await notes.fetch(pid)
                times.append(time.perf_counter() - t)
        finally:
            await conn.close()
        times.sort()
        return times[int(len(times) * 0.99)] * 1000

    return asyncio.run(work())


def run() -> Iterator[str]:
    from bench.databases import engines

    started_load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        workdir = Path(tmp)
        echo: dict[int, float] = {}
        for processes in (1, 2):
            with echo_server(workdir, processes) as echo_port:
                echo[processes] = wrk_post(echo_port, "/echo", "none", workdir)[0]
            yield (f"baseline: bare Litestar JSON echo, {processes} process(es), wrk 32 conn: "
                         f"{echo[processes]:,.0f} req/s")
        for engine in engines(workdir, "history"):
            token = setup_brand(engine.url)
            if engine.is_sqlite:
                path = Path(engine.url.split("///", 1)[1])
                first, last, seconds = load(path)
                raw = baseline(path, first, last)
                driver = "plain sqlite3"
            else:
                first, last, seconds = load_postgres(engine.plain_url)
                raw = postgres_baseline(engine.plain_url, first, last)
                driver = "asyncpg alone (prepared, in a read-only transaction)"
            yield (f"{engine.name}: bulk load: {INTERACTIONS:,} interactions over {PEOPLE:,} people in "
                         f"{seconds:.1f} s ({INTERACTIONS / seconds:,.0f} interactions/s)")
            yield (f"{engine.name}: baseline: the same two queries through {driver}, p99 {raw:.2f} ms")
            for processes in (1, 2):
                with assistant_server(engine.url, processes=processes) as (port, proc):
                    for connections in (1, 4, 32):
                        rate, p50, p99, errors = wrk(port, token, first, last, workdir, connections)
                        share = f" ({rate / echo[processes]:.0%} of the echo)" if connections == 32 else ""
                        yield (f"{engine.name}, {processes} serve: GET /people/{{id}}/history, random people, "
                                     f"wrk {connections} conn: {rate:,.0f} req/s{share}, p50 {p50:.1f} ms, "
                                     f"p99 {p99:.1f} ms, errors {errors}  "
                                     f"[target p99 <= {20 if connections == 32 else 10} ms]")
                    if processes == 1:
                        yield (f"{engine.name}, 1M-interaction store: " + single_line(
                            "1 serve --no-worker", port, token, workdir, echo[1]))
                    yield (f"{engine.name}, {processes} serve: peak RSS (VmHWM, largest process): "
                                 f"{peak_rss_mb(proc.pid):.0f} MB  [target <= 250 MB]")
    yield (load_line(started_load))


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
