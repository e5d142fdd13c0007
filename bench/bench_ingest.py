"""Ingest speed on SQLite, one server process: single mentions under `wrk` at 32 connections beside a bare
Litestar JSON echo app under the same uvicorn settings; 1,000-mention batches through the API beside plain
`sqlite3` `executemany` of the same rows. Targets (issue 2): >= 1,500 mentions/s with p99 <= 50 ms; batches
>= 20,000 mentions/s; server memory <= 250 MB."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
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
  local body = string.format(
    '{"platform":"x","external_id":"w%d-%d","text":"@acme my order %d is late","created_at":"2026-11-20T12:00:00Z",'
    .. '"author":{"handle":"@u%d_%d","display_name":"User"}}', tid, counter, counter, tid, counter % 500)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, path: str = "/healthz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def env_for(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_DATABASE_URL": db_url, "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000000000",
                "PYTHONPATH": str(ROOT)})
    return env


@contextmanager
def assistant_server(db_url: str, *, worker: bool = False) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    args = [PYTHON, "-m", "assistant", "serve", "--port", str(port)] + ([] if worker else ["--no-worker"])
    proc = subprocess.Popen(args, cwd=ROOT, env=env_for(db_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
def echo_server(workdir: Path) -> Iterator[int]:
    (workdir / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "uvicorn", "echo_app:app", "--port", str(port), "--loop", "uvloop",
                             "--http", "httptools", "--log-level", "warning", "--no-access-log"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port, "/")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def wrk(port: int, path: str, token: str, workdir: Path, connections: int = 32,
        duration: int = DURATION) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, errors)."""
    script = workdir / f"post_{port}.lua"
    script.write_text(f'PATH = "{path}"\nAUTH = "Bearer {token}"\n' + LUA)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert found, out
    requests, micros, p99, errors, p50 = map(int, found.groups())
    return requests / (micros / 1e6), p50 / 1000, p99 / 1000, errors


def setup_brand(db_url: str) -> str:
    """Migrate a fresh file, make a brand and an ingest+read key; answers the key."""
    from assistant.auth import service as auth
    from assistant.db import Database
    from assistant.db.migrate import upgrade

    upgrade(db_url)

    async def make() -> str:
        db = Database(db_url)
        try:
            return await db.run_write(
                lambda conn: auth.create_api_key(conn, auth.create_brand(conn, "bench", "Bench").id,
                                                 ["ingest", "read"]).token)
        finally:
            await db.dispose()

    return asyncio.run(make())


def batch_bodies(batches: int, size: int = 1000) -> list[bytes]:
    return [json.dumps({"mentions": [
        {"platform": "x", "external_id": f"b{b}-{n}", "text": f"@acme batch {b} item {n} is late",
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


def run() -> list[str]:
    started_load = os.getloadavg()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        db_url = f"sqlite+aiosqlite:///{workdir / 'ingest.db'}"
        token = setup_brand(db_url)
        with echo_server(workdir) as echo_port:
            rate, p50, p99, errors = wrk(echo_port, "/echo", "none", workdir)
        lines.append(f"baseline: bare Litestar JSON echo, wrk 32 conn {DURATION}s: {rate:,.0f} req/s, "
                     f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors}")
        with assistant_server(db_url) as (port, proc):
            rate, p50, p99, errors = wrk(port, "/api/v1/mentions", token, workdir)
            lines.append(f"single mentions (serve --no-worker), wrk 32 conn {DURATION}s: {rate:,.0f} mentions/s, "
                         f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, non-2xx/errors {errors}  "
                         f"[target >= 1,500/s, p99 <= 50 ms]")
            bodies = batch_bodies(30)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                client.post("/api/v1/mentions/batch", content=batch_bodies(1)[0].replace(b'"b0-', b'"warm-'),
                            headers=headers)
                started = time.perf_counter()
                accepted = 0
                for body in bodies:
                    response = client.post("/api/v1/mentions/batch", content=body, headers=headers)
                    response.raise_for_status()
                    accepted += sum(r["status"] == "accepted" for r in response.json()["results"])
                elapsed = time.perf_counter() - started
            rss = peak_rss_mb(proc.pid)
        lines.append(f"batches of 1,000 through the API (one client, sequential): {accepted / elapsed:,.0f} "
                     f"mentions/s ({accepted:,} in {elapsed:.1f} s)  [target >= 20,000/s]")
        lines.append(f"baseline: plain sqlite3 executemany of the same rows: {sqlite_baseline(workdir, bodies):,.0f} "
                     f"rows/s")
        lines.append(f"server peak RSS (VmHWM): {rss:.0f} MB  [target <= 250 MB]")
    lines.append(load_line(started_load))
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
