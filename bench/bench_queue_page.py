"""Server time to render the queue page and a person page with 100,000 pending turns and 500 messages for each
person shown, and the SQL statements per render for page sizes 10 and 50 (must not grow), on SQLite and (with
``BENCH_DATABASE_URL``) PostgreSQL. Baseline: the sign-in page of the same app (a template, no database). Target:
at most 100 ms each. Then many reviewers at once: the page under wrk at 8 connections against ``serve`` with one
and with two processes, beside the sign-in page under the same load. Only the card in focus
carries the person's history (the others fetch it when focused), and the waiting count stops at 10,000+.

The page is measured again with each search in ``FILTERS`` (or those given: ``python -m bench.bench_queue_page
--filter 'platform=x&first_contact=yes' ...``): a common match, and rare ones that read the whole view where
no index serves them (see ``assistant/review/filters.py``)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import Connection, event, insert

from assistant.app import create_app
from assistant.auth.passwords import hash_password
from assistant.db import Database, reads
from assistant.db.migrate import upgrade
from assistant.db.people import Handle, Interaction, Person
from assistant.db.tenancy import Brand, User
from assistant.db.turns import Draft, Turn
from assistant.services import app_services
from assistant.settings import Settings
from assistant.web.security import SESSION_COOKIE, sign_session
from bench.bench_ingest import DURATION, assistant_server, env_for
from bench.databases import Engine, analyze, engines

TURNS = 100_000
HISTORY = 500
SHOWN = 50
ITERATIONS = 60
SECRET = "bench-secret"
SERVED_SECRET = env_for("")["ASSISTANT_SECRET_KEY"]
"""The secret ``serve`` signs sessions with in the benchmarks (``bench_ingest.env_for``)."""
REVIEWERS = 8
FILTERS = ("first_contact=yes", "platform=mastodon", f"handle=user{TURNS - 1}", f"person=Person {TURNS - 1}",
           f"text=hello from {TURNS - 1}")
"""Common first contacts; a platform nobody waits on; one person by handle, by name, by the words they wrote."""


def _seed(url: str) -> tuple[int, int]:
    """The store, through the service's own connection (one transaction); answers the reviewer's id and the
    number of messages."""
    upgrade(url)

    async def seed() -> int:
        db = Database(url)
        try:
            return await db.run_write(_fill)
        finally:
            await db.dispose()

    return 1, asyncio.run(seed())


def _fill(conn: Connection) -> int:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    conn.execute(insert(Brand), [{"id": 1, "slug": "bench", "name": "Bench", "created_at": t0}])
    conn.execute(insert(User), [{"id": 1, "brand_id": 1, "email": "r@bench.example", "role": "reviewer",
                                 "display_name": "r", "password_hash": hash_password("bench password"),
                                 "session_version": 0, "disabled": False, "created_at": t0}])
    conn.execute(insert(Person), [{"id": i, "brand_id": 1, "display_name": f"Person {i}", "do_not_reply": False,
                                   "followers": i % 5000, "first_seen_at": t0, "last_seen_at": t0,
                                   "mention_count": HISTORY if i <= SHOWN else 1,
                                   "reply_count": HISTORY // 2 if i <= SHOWN else 0, "created_at": t0}
                                  for i in range(1, TURNS + 1)])
    conn.execute(insert(Handle), [{"id": i, "brand_id": 1, "person_id": i, "platform": "x",
                                   "handle": f"user{i}", "created_at": t0} for i in range(1, TURNS + 1)])
    conn.execute(insert(Turn), [{"id": i, "brand_id": 1, "person_id": i, "platform": "x",
                                 "status": "pending_review", "waiting_since": t0 + dt.timedelta(seconds=i),
                                 "current_draft_id": i, "version": 1, "created_at": t0, "updated_at": t0}
                                for i in range(1, TURNS + 1)])
    conn.execute(insert(Draft), [{"id": i, "turn_id": i, "text": f"Hi Person {i}, thanks for writing.",
                                  "source": "model", "findings": [], "flags": [], "attempts": 1, "stale": False,
                                  "created_at": t0} for i in range(1, TURNS + 1)])
    rows: list[dict[str, Any]] = []
    next_id = 1
    for i in range(1, TURNS + 1):  # this turn's mention for everyone
        rows.append({"id": next_id, "brand_id": 1, "person_id": i, "direction": "inbound", "platform": "x",
                     "external_id": f"m{next_id}", "text": f"@bench hello from {i}",
                     "occurred_at": t0 + dt.timedelta(seconds=i), "received_at": t0, "turn_id": i})
        next_id += 1
    for i in range(1, SHOWN + 1):  # and a long history for the people on the first pages
        for k in range(HISTORY - 1):
            rows.append({"id": next_id, "brand_id": 1, "person_id": i,
                         "direction": "outbound" if k % 2 else "inbound", "platform": "x",
                         "external_id": f"m{next_id}", "text": f"message {k} with person {i} " * 3,
                         "occurred_at": t0 - dt.timedelta(days=400) + dt.timedelta(hours=k), "received_at": t0,
                         "turn_id": None})
            next_id += 1
    conn.execute(insert(Interaction), rows)
    if conn.dialect.name == "postgresql":  # the ids were given: move each sequence past them
        for table in ("brands", "users", "people", "handles", "turns", "drafts", "interactions"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
    return next_id - 1


def _measure(client: TestClient, path: str, n: int = ITERATIONS) -> tuple[float, float]:
    client.get(path)  # warm caches and the template
    times = []
    for _ in range(n):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def run(filters: Sequence[str] = FILTERS) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-queue-page-") as tmp:
        for engine in engines(Path(tmp), "queue-page"):
            started = time.perf_counter()
            user_id, messages = _seed(engine.url)
            analyze(engine)
            yield (f"{engine.name}: seeded {TURNS:,} pending turns, {messages:,} messages in "
                   f"{time.perf_counter() - started:.1f} s")
            yield from _in_process(engine, user_id, filters)
            yield from _served(engine, user_id, Path(tmp))


def _in_process(engine: Engine, user_id: int, filters: Sequence[str]) -> Iterator[str]:
    """Each page's server time in this process, one request at a time, and the statements it sends."""
    settings = Settings(database_url=engine.url, secret_key=SECRET)
    app = create_app(settings)
    statements: list[str] = []
    for each in app_services(app).db.engines:
        if engine.is_sqlite:  # every statement SQLite runs, those sent on sqlite3 itself (db/reads) included
            event.listen(each, "connect", lambda dbapi, _record: dbapi.set_trace_callback(statements.append))
        else:
            event.listen(each, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with _driver_reads_counted(statements), TestClient(app) as client:
        client.cookies.set(SESSION_COOKIE, sign_session(SECRET.encode(), user_id, 3600))
        client.get("/")  # the rate limit takes this process's share of the user's allowance once, not per page

        def sent(path: str) -> tuple[int, str]:
            statements.clear()
            html = client.get(path).text
            return sum(each.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT") for each in statements), html

        counts = {}
        for limit in (10, 50):
            counts[limit], html = sent(f"/?limit={limit}")
            assert html.count('<li class="row') == limit
        person_statements, _ = sent("/people/1")
        base = _measure(client, "/login")
        q10 = _measure(client, "/?limit=10")
        q50 = _measure(client, "/?limit=50", n=30)
        person = _measure(client, "/people/1")
        count = _measure(client, "/queue/count")
        searched = []
        for query in filters:
            html = client.get(f"/?limit=10&{query}").text
            searched.append((query, html.count('<li class="row'), _measure(client, f"/?limit=10&{query}", n=30)))
        load = os.getloadavg()
    name = engine.name
    yield from [
        f"{name}: baseline /login (template, no database): median {base[0]:.1f} ms, p99 {base[1]:.1f} ms",
        f"{name}: queue page, 10 turns:  median {q10[0]:.1f} ms, p99 {q10[1]:.1f} ms, {counts[10]} SQL statements "
        f"(BEGIN and COMMIT aside)",
        f"{name}: queue page, 50 turns:  median {q50[0]:.1f} ms, p99 {q50[1]:.1f} ms, {counts[50]} SQL statements",
        f"{name}: person page ({HISTORY} messages, 50 shown): median {person[0]:.1f} ms, p99 {person[1]:.1f} ms, "
        f"{person_statements} SQL statements",
        f"{name}: waiting count (capped at 10,000+): median {count[0]:.1f} ms, p99 {count[1]:.1f} ms",
        *(f"{name}: queue page, 10 turns, searched {query!r} ({shown} shown): median {took[0]:.1f} ms, "
          f"p99 {took[1]:.1f} ms" for query, shown, took in searched),
        f"{name}: load average during the run: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (two cores)",
        f"{name}: statements grow with page size: {'YES (bad)' if counts[50] != counts[10] else 'no'}; "
        f"target <= 100 ms: {'met' if max(q10[0], person[0]) <= 100 else 'MISSED'} (medians, default page 10)",
    ]


@contextmanager
def _driver_reads_counted(statements: list[str]) -> Iterator[None]:
    """PostgreSQL: history reads go to asyncpg itself (``db/reads``), past SQLAlchemy's events, and asyncpg's
    query log leaves prepared statements out; count them where they are sent, for the time of the block."""
    send = reads._driver_rows

    def counted(conn: Connection, raw: Any, sql: str, args: list[Any]) -> list[Any]:
        statements.append(sql)
        return send(conn, raw, sql, args)

    reads._driver_rows = counted
    try:
        yield
    finally:
        reads._driver_rows = send


def _served(engine: Engine, user_id: int, workdir: Path) -> Iterator[str]:
    """Many reviewers at once: the queue page (10 turns) and, as its baseline, the sign-in page, under wrk at
    REVIEWERS connections against ``serve`` with one and with two processes."""
    cookie = f"{SESSION_COOKIE}={sign_session(SERVED_SECRET.encode(), user_id, 3600)}"
    for processes in (1, 2):
        with assistant_server(engine.url, processes=processes) as (port, _):
            wrk_get(port, "/?limit=10", cookie, seconds=2)  # every process warm: pool, prepared statements
            login = wrk_get(port, "/login", cookie)
            page = wrk_get(port, "/?limit=10", cookie)
        yield (f"{engine.name}, {processes} serve: queue page (10 turns), wrk {REVIEWERS} conn {DURATION}s: "
               f"{page[0]:,.0f} pages/s, p50 {page[1]:.1f} ms, p99 {page[2]:.1f} ms, non-2xx/errors {page[3]}; "
               f"baseline /login {login[0]:,.0f} req/s, p99 {login[2]:.1f} ms")


def wrk_get(port: int, path: str, cookie: str, seconds: int = DURATION) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx answers and socket errors) of GET ``path`` as the signed-in reviewer."""
    out = subprocess.run(["wrk", "-t2", f"-c{REVIEWERS}", f"-d{seconds}s", "--latency", "-H", f"Cookie: {cookie}",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", out))
    return rate, _latency_ms(out, "50%"), _latency_ms(out, "99%"), errors


def _latency_ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", action="append", dest="filters",
                        help="a search as the page's query string, e.g. 'platform=x&first_contact=yes' (repeatable)")
    for line in run(parser.parse_args(sys.argv[1:]).filters or FILTERS):
        print(line, flush=True)
