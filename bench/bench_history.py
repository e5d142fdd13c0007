"""History reads on SQLite and (with ``BENCH_DATABASE_URL``) PostgreSQL: 1,000,000 interactions over 200,000
people bulk-loaded (``bench/stores.py``: SQLite through plain sqlite3; PostgreSQL: asyncpg COPY), then
`GET /api/v1/people/{id}/history` for random people through the real server under `wrk` with 1 and 2 server
processes (`serve --workers`), and the server's peak memory. (Ingest on stores of 1M and 10M: ``bench store``.)
Targets (issues 2 and 14): p99 <= 10 ms (<= 20 ms at 32 connections); >= 40% of the bare echo of the same
process count; RSS <= 250 MB. Baselines: the same queries through the plain driver (sqlite3, asyncpg), and the
bare Litestar echo, measured right before and after each 32-connection figure. Each line gives the server's CPU
time per request (every serve process, from /proc), which other work on the machine disturbs less than
requests/s."""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from bench.bench_ingest import DURATION, assistant_server, cpu_seconds, echoes, load_line, peak_rss_mb, setup_brand
from bench.bench_ingest import wrk as wrk_post
from bench.stores import load_postgres, load_sqlite

INTERACTIONS = 1_000_000

LUA = r"""
math.randomseed(os.time() + (tid or 0))
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function request()
  return wrk.format("GET", "/api/v1/people/" .. math.random(FIRST, LAST) .. "/history?limit=50", {["Authorization"]=AUTH})
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(99), summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency.max))
end
"""


def wrk(port: int, token: str, first: int, last: int, workdir: Path, connections: int) -> tuple[float, float, float, str]:
    """(requests/s, p50 ms, p99 ms, what went wrong): non-2xx answers, socket errors, and requests wrk gave up on
    after its 2 s timeout, told apart (a stall of the page cache shows as the last), with the slowest request."""
    script = workdir / "history.lua"
    script.write_text(f'FIRST = {first}\nLAST = {last}\nAUTH = "Bearer {token}"\n' + LUA)
    out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{DURATION}s", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert found, out
    requests, micros, p99, status, socket, timeouts, p50, slowest = map(int, found.groups())
    errors = (f"errors {status + socket + timeouts} (non-2xx {status}, socket {socket}, over 2 s {timeouts}), "
              f"slowest {slowest / 1000:,.1f} ms")
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


def tcp_timeouts() -> int:
    """The machine's TCP retransmission timeouts so far (``TCPTimeouts`` of ``/proc/net/netstat``; -1 where it is
    not readable). A timeout on loopback holds a request for at least 200 ms, then 400, 800...; none was seen in
    a stalled run, but each run still counts them."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()
                 if line.startswith("TcpExt:")]
        return int(lines[1][lines[0].index("TCPTimeouts")])
    except (OSError, ValueError, IndexError):
        return -1


def page_refaults() -> int:
    """File pages the machine has read again from the disk after evicting them, so far (``workingset_refault_file``
    of ``/proc/vmstat``; -1 where it is not readable). This machine kind pages out file pages unused for a minute
    (a DAMON ``pageout`` scheme), so a store loaded before the runs is partly read from the disk again during
    them: the PostgreSQL two-serve stalls came with such reads and vanished with the scheme off (README)."""
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "workingset_refault_file":
                return int(value)
    except (OSError, ValueError):
        pass
    return -1


def run() -> Iterator[str]:
    from bench.databases import engines

    started_load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp, echoes(Path(tmp)) as echo:
        workdir = Path(tmp)
        for processes in (1, 2):
            yield (f"baseline: bare Litestar JSON echo, {processes} process(es), wrk 32 conn: "
                   f"{echo.rate(processes):,.0f} req/s (and measured again right before and after each 32-connection "
                   f"figure below)")
        for engine in engines(workdir, "history"):
            token = setup_brand(engine.url)
            started = time.perf_counter()
            if engine.is_sqlite:
                path = Path(engine.url.split("///", 1)[1])
                store = load_sqlite(path, INTERACTIONS)
                seconds = time.perf_counter() - started
                raw = baseline(path, store.first_person, store.last_person)
                driver = "plain sqlite3"
            else:
                store = load_postgres(engine.plain_url, INTERACTIONS)
                seconds = time.perf_counter() - started
                raw = postgres_baseline(engine.plain_url, store.first_person, store.last_person)
                driver = "asyncpg alone (prepared, in a read-only transaction)"
            first, last = store.first_person, store.last_person
            yield (f"{engine.name}: bulk load: {INTERACTIONS:,} interactions over {store.people:,} people in "
                         f"{seconds:.1f} s ({INTERACTIONS / seconds:,.0f} interactions/s; bench/stores.py)")
            yield (f"{engine.name}: baseline: the same two queries through {driver}, p99 {raw:.2f} ms")
            for processes in (1, 2):
                with assistant_server(engine.url, processes=processes) as (port, proc):
                    for connections in (1, 4, 32):
                        def measure() -> tuple[tuple[float, float, float, str], float, int, int]:
                            used, timeouts, refaults = cpu_seconds(proc.pid), tcp_timeouts(), page_refaults()
                            figures = wrk(port, token, first, last, workdir, connections)
                            return (figures, cpu_seconds(proc.pid) - used, tcp_timeouts() - timeouts,
                                    page_refaults() - refaults)

                        share = ""
                        if connections == 32:
                            figures, echo_rate, echo_line = echo.around(processes, measure)
                            share = f" ({figures[0][0] / echo_rate:.0%} of the echo; {echo_line})"
                        else:
                            figures = measure()
                        (rate, p50, p99, errors), used, timeouts, refaults = figures
                        yield (f"{engine.name}, {processes} serve: GET /people/{{id}}/history, random people, "
                                     f"wrk {connections} conn: {rate:,.0f} req/s{share}, p50 {p50:.1f} ms, "
                                     f"p99 {p99:.1f} ms, {errors}, server CPU "
                                     f"{used / max(rate * DURATION, 1) * 1e6:.0f} µs/request, TCP timeouts "
                                     f"{timeouts}, file pages read again {refaults}  "
                                     f"[target p99 <= {20 if connections == 32 else 10} ms]")
                    yield (f"{engine.name}, {processes} serve: peak RSS (VmHWM, largest process): "
                                 f"{peak_rss_mb(proc.pid):.0f} MB  [target <= 250 MB]")
    yield (load_line(started_load))


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
