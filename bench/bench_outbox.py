"""The outbox under load: 10,000 approved replies claimed and confirmed by 4 scheduling tools at once.

A real ``assistant serve`` (1 and 2 processes) runs on a fresh SQLite file and, with ``BENCH_DATABASE_URL``,
a fresh PostgreSQL database; four clients each claim 50 replies at a time over HTTP and confirm every one as
posted (each confirmation writes the reply, its turn, the outbound interaction and the person's counters).
The baseline is the same database work with no HTTP and no ORM through the plain driver (``sqlite3`` on a copy
of the same file, asyncpg on a second database seeded alike): claiming 50 rows and confirming each in its own
transaction. Every reply must end confirmed exactly once. Target (issue 14): >= 50% of the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection

from assistant.auth import service as auth
from assistant.db import Database
from assistant.db.migrate import upgrade
from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction, Person
from assistant.db.turns import Turn

REPLIES = int(os.environ.get("BENCH_OUTBOX_REPLIES", "10000"))
CLIENTS = 4
CLAIM_LIMIT = 50
IN_FLIGHT_PER_CLIENT = 8
"""Confirmations each tool has in flight at once, as a tool posting to a platform in parallel would."""
TARGET_PER_SECOND = 1_000


def run() -> list[str]:
    from bench.databases import BENCH_DATABASE_URL, analyze, engines, fresh_postgres

    started_load = os.getloadavg()
    lines = [f"{REPLIES} approved replies, {CLIENTS} clients claiming {CLAIM_LIMIT} at a time, "
             f"{IN_FLIGHT_PER_CLIENT} confirmations in flight per client, real server on loopback"]
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
        for engine in engines(Path(folder), "outbox"):
            upgrade(engine.url)
            key = asyncio.run(_seed(engine.url))
            analyze(engine)
            if engine.is_sqlite:
                path = Path(engine.url.split("///", 1)[1])
                shutil.copy(path, Path(folder) / "baseline.db")
                baseline = _baseline(Path(folder) / "baseline.db")
                driver = "plain sqlite3 (synchronous=FULL, as the server)"
            else:
                base_url = fresh_postgres(BENCH_DATABASE_URL + "_base")
                upgrade(base_url)
                asyncio.run(_seed(base_url))
                baseline = asyncio.run(_postgres_baseline(base_url.replace("+asyncpg", "")))
                driver = "asyncpg alone"
            lines.append(f"{engine.name}: baseline, {driver} doing the same writes: {REPLIES / baseline:8.0f} "
                         f"replies/s ({baseline:.2f} s)")
            for processes in (1, 2):
                if processes > 1:
                    key = asyncio.run(_reset(engine.url))
                    analyze(engine)
                with _server(engine.url, processes) as base:
                    wall, confirmed, requests = asyncio.run(_claim_and_confirm(base, key))
                twice = [reply_id for reply_id, times in Counter(confirmed).items() if times > 1]
                posted = asyncio.run(_posted(engine.url))
                assert not twice, f"replies confirmed twice: {twice[:10]}"
                assert len(confirmed) == posted == REPLIES, f"{len(confirmed)} confirmed, {posted} posted of {REPLIES}"
                rate = REPLIES / wall
                lines.append(
                    f"{engine.name}, {processes} serve: claim-then-confirm: {rate:8.0f} replies/s ({wall:.2f} s, "
                    f"{requests} HTTP requests, {rate * baseline / REPLIES:.0%} of the baseline); none confirmed "
                    f"twice, {posted} posted  [target >= {TARGET_PER_SECOND}/s and >= 50% of the baseline]")
    end = os.getloadavg()
    lines.append(f"machine load average (1/5/15 min): {started_load[0]:.2f}/{started_load[1]:.2f}/"
                 f"{started_load[2]:.2f} at the start, {end[0]:.2f}/{end[1]:.2f}/{end[2]:.2f} at the end")
    return lines


async def _posted(url: str) -> int:
    db = Database(url)
    try:
        return await db.run_read(lambda conn: conn.exec_driver_sql(
            "SELECT count(*) FROM replies WHERE status = 'posted'").scalar())
    finally:
        await db.dispose()


async def _reset(url: str) -> str:
    """Every reply approved again and the posted history gone, for the next run on the same database; answers
    a new outbox key."""
    db = Database(url)
    try:
        def reset(conn: Any) -> None:
            conn.exec_driver_sql("DELETE FROM interactions WHERE direction = 'outbound'")
            conn.exec_driver_sql("UPDATE replies SET status = 'approved', lease_until = NULL, posted_at = NULL, "
                                 "external_post_id = NULL, claimed_by_key_id = NULL, claim_token_hash = NULL")
            conn.exec_driver_sql("UPDATE turns SET status = 'approved'")
            conn.exec_driver_sql("UPDATE people SET reply_count = 0")

        await db.run_write(reset)
        return await db.run_write(lambda conn: auth.create_api_key(conn, 1, ["outbox"]).token)
    finally:
        await db.dispose()


async def _seed(url: str) -> str:
    """A brand, an outbox key and ``REPLIES`` people, each with one mention, an approved turn and a reply."""
    now = dt.datetime.now(dt.timezone.utc)

    def seed(conn: Connection) -> str:
        brand = auth.create_brand(conn, "bench", "Bench")
        key = auth.create_api_key(conn, brand.id, ["outbox"])
        b = brand.id
        conn.execute(Person.__table__.insert(), [
            {"id": i, "brand_id": b, "display_name": f"Person {i}", "first_seen_at": now, "last_seen_at": now,
             "do_not_reply": False, "mention_count": 1, "reply_count": 0, "created_at": now}
            for i in range(1, REPLIES + 1)])
        conn.execute(Handle.__table__.insert(), [
            {"brand_id": b, "person_id": i, "platform": "x", "handle": f"p{i}", "created_at": now}
            for i in range(1, REPLIES + 1)])
        conn.execute(Turn.__table__.insert(), [
            {"id": i, "brand_id": b, "person_id": i, "platform": "x", "conversation_key": f"c{i}",
             "status": "approved", "waiting_since": now, "version": 0, "created_at": now, "updated_at": now}
            for i in range(1, REPLIES + 1)])
        conn.execute(Interaction.__table__.insert(), [
            {"brand_id": b, "person_id": i, "direction": "inbound", "platform": "x", "external_id": f"m{i}",
             "text": "@bench where is my order", "occurred_at": now, "received_at": now,
             "conversation_key": f"c{i}", "turn_id": i} for i in range(1, REPLIES + 1)])
        conn.execute(Reply.__table__.insert(), [
            {"brand_id": b, "turn_id": i, "person_id": i, "platform": "x", "text": f"Hi Person {i}, on it.",
             "in_reply_to": f"m{i}", "author_handle": f"p{i}", "status": "approved", "failures": 0,
             "approved_at": now + dt.timedelta(microseconds=i), "created_at": now}
            for i in range(1, REPLIES + 1)])
        return key.token

    db = Database(url)
    try:
        return await db.run_write(seed)
    finally:
        await db.dispose()


@contextlib.contextmanager
def _server(url: str, processes: int = 1) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_DATABASE_URL=url, ASSISTANT_RATE_LIMIT_PER_MINUTE="10000000",
               ASSISTANT_SECRET_KEY="bench-secret-key-not-for-production")
    process = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--no-worker", "--port", str(port),
                                "--workers", str(processes)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


class _Connection:
    """One keep-alive HTTP/1.1 connection to the server, JSON in and out. The tools' stand-in: httpx spent
    1.6 ms of CPU a request (16 s of an 18 s run), as much as the server, and both share this machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.reader, self.writer, self.head = reader, writer, head

    @classmethod
    async def open(cls, base_url: str, key: str) -> _Connection:
        host, port = base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        head = (f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
                "Content-Type: application/json\r\n").encode()
        return cls(reader, writer, head)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
                          % (path.encode(), self.head, len(data), data))
        status = int((await self.reader.readline()).split()[1])
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{path}: answer {status} without a Content-Length")
        answer = await self.reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {answer[:500]!r}")
        return json.loads(answer)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def _claim_and_confirm(base_url: str, key: str) -> tuple[float, list[int], int]:
    """Wall seconds, every confirmed reply id (one entry per 200), and the number of requests made."""
    confirmed: list[int] = []
    requests = 0
    tokens: dict[int, str] = {}

    def body_of(reply_id: int) -> dict[str, str]:
        """The confirmation, with the claim's token (SPEC 12)."""
        return {"external_id": f"post-{reply_id}", "claim_token": tokens[reply_id]}

    async def tool(number: int) -> None:
        nonlocal requests
        pool: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(IN_FLIGHT_PER_CLIENT):
            pool.put_nowait(await _Connection.open(base_url, key))

        async def confirm(reply_id: int) -> None:
            nonlocal requests
            connection = await pool.get()
            try:
                await connection.post(f"/api/v1/replies/{reply_id}/posted", body_of(reply_id))
            finally:
                pool.put_nowait(connection)
            requests += 1
            confirmed.append(reply_id)

        try:
            while True:
                connection = await pool.get()
                try:
                    items = (await connection.post("/api/v1/replies/claim",
                                                   {"limit": CLAIM_LIMIT, "lease_seconds": 300}))["items"]
                finally:
                    pool.put_nowait(connection)
                requests += 1
                if not items:
                    return
                tokens.update({item["id"]: item["claim_token"] for item in items})
                await asyncio.gather(*(confirm(item["id"]) for item in items))
        finally:
            while not pool.empty():
                await pool.get_nowait().close()

    started = time.perf_counter()
    await asyncio.gather(*(tool(n) for n in range(CLIENTS)))
    return time.perf_counter() - started, confirmed, requests


def _baseline(path: Path) -> float:
    """Seconds for plain sqlite3 to claim in fifties and confirm each reply in its own transaction."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
    started = time.perf_counter()
    while True:
        connection.execute("BEGIN IMMEDIATE")
        ids = [row[0] for row in connection.execute(
            "SELECT id FROM replies WHERE brand_id = 1 AND status = 'approved' ORDER BY approved_at, id LIMIT ?",
            (CLAIM_LIMIT,))]
        connection.executemany("UPDATE replies SET status = 'claimed', lease_until = ? WHERE id = ?",
                               [(now, i) for i in ids])
        connection.execute("COMMIT")
        if not ids:
            break
        for reply_id in ids:
            connection.execute("BEGIN IMMEDIATE")
            turn_id, person_id, text, in_reply_to = connection.execute(
                "SELECT turn_id, person_id, text, in_reply_to FROM replies WHERE id = ?", (reply_id,)).fetchone()
            connection.execute("UPDATE replies SET status = 'posted', external_post_id = ?, posted_at = ? "
                               "WHERE id = ?", (f"post-{reply_id}", now, reply_id))
            connection.execute("UPDATE turns SET status = 'posted' WHERE id = ?", (turn_id,))
            connection.execute(
                "INSERT INTO interactions (brand_id, person_id, direction, platform, external_id, text, "
                "occurred_at, received_at, in_reply_to, turn_id) VALUES (1, ?, 'outbound', 'x', ?, ?, ?, ?, ?, ?)",
                (person_id, f"post-{reply_id}", text, now, now, in_reply_to, turn_id))
            connection.execute("UPDATE people SET reply_count = reply_count + 1, last_seen_at = ? WHERE id = ?",
                               (now, person_id))
            connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


async def _postgres_baseline(url: str) -> float:
    """Seconds for asyncpg alone to claim in fifties and confirm each reply in its own transaction."""
    import asyncpg

    connection = await asyncpg.connect(url)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    started = time.perf_counter()
    try:
        while True:
            async with connection.transaction():
                ids = [row[0] for row in await connection.fetch(
                    "SELECT id FROM replies WHERE brand_id = 1 AND status = 'approved' ORDER BY approved_at, id "
                    "LIMIT $1 FOR UPDATE SKIP LOCKED", CLAIM_LIMIT)]
                await connection.execute("UPDATE replies SET status = 'claimed', lease_until = $1 "
                                         "WHERE id = ANY($2::bigint[])", now, ids)
            if not ids:
                break
            for reply_id in ids:
                async with connection.transaction():
                    turn_id, person_id, text, in_reply_to = await connection.fetchrow(
                        "SELECT turn_id, person_id, text, in_reply_to FROM replies WHERE id = $1 FOR UPDATE",
                        reply_id)
                    await connection.execute("UPDATE replies SET status = 'posted', external_post_id = $1, "
                                             "posted_at = $2 WHERE id = $3", f"post-{reply_id}", now, reply_id)
                    await connection.execute("UPDATE turns SET status = 'posted' WHERE id = $1", turn_id)
                    await connection.execute(
                        "INSERT INTO interactions (brand_id, person_id, direction, platform, external_id, text, "
                        "occurred_at, received_at, in_reply_to, turn_id) VALUES (1, $1, 'outbound', 'x', $2, $3, $4, "
                        "$4, $5, $6)", person_id, f"post-{reply_id}", text, now, in_reply_to, turn_id)
                    await connection.execute("UPDATE people SET reply_count = reply_count + 1, last_seen_at = $1 "
                                             "WHERE id = $2", now, person_id)
    finally:
        await connection.close()
    return time.perf_counter() - started
