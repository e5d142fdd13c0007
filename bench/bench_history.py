"""History reads on SQLite: 1,000,000 interactions over 200,000 people bulk-loaded (Core executemany), then
`GET /api/v1/people/{id}/history` for random people through the real server under `wrk`, and the server's
peak memory. Targets (issue 2): p99 <= 10 ms; RSS <= 250 MB. Baseline: the same query in plain sqlite3."""

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

from sqlalchemy import create_engine

from bench.bench_ingest import DURATION, assistant_server, load_line, peak_rss_mb, setup_brand

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


def run() -> list[str]:
    started_load = os.getloadavg()
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        workdir = Path(tmp)
        path = workdir / "history.db"
        token = setup_brand(f"sqlite+aiosqlite:///{path}")
        first, last, seconds = load(path)
        lines.append(f"bulk load: {INTERACTIONS:,} interactions over {PEOPLE:,} people in {seconds:.1f} s "
                     f"({INTERACTIONS / seconds:,.0f} interactions/s, Core executemany)")
        lines.append(f"baseline: the same two queries in plain sqlite3, p99 {baseline(path, first, last):.2f} ms")
        with assistant_server(f"sqlite+aiosqlite:///{path}") as (port, proc):
            for connections in (1, 4, 32):
                rate, p50, p99, errors = wrk(port, token, first, last, workdir, connections)
                lines.append(f"GET /people/{{id}}/history, random people, wrk {connections} conn: {rate:,.0f} req/s, "
                             f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors}  [target p99 <= 10 ms]")
            lines.append(f"server peak RSS (VmHWM): {peak_rss_mb(proc.pid):.0f} MB  [target <= 250 MB]")
    lines.append(load_line(started_load))
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
