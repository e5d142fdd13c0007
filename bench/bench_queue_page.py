"""Server time to render the queue page and a person page with 100,000 pending turns and 500 messages for each
person shown, and the SQL statements per render for page sizes 10 and 50 (must not grow). Baseline: the
sign-in page of the same app (a template, no database). Target: at most 100 ms each. Only the card in focus
carries the person's history (the others fetch it when focused), and the waiting count stops at 10,000+.

The page is measured again with each search in ``FILTERS`` (or those given: ``python -m bench.bench_queue_page
--filter 'platform=x&first_contact=yes' ...``): a common match, and rare ones that read the whole view where
no index serves them (see ``assistant/review/filters.py``)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import create_engine, event, insert

from assistant.app import create_app
from assistant.auth.passwords import hash_password
from assistant.db.migrate import upgrade
from assistant.db.people import Handle, Interaction, Person
from assistant.db.tenancy import Brand, User
from assistant.db.turns import Draft, Turn
from assistant.services import app_services
from assistant.settings import Settings
from assistant.web.security import SESSION_COOKIE, sign_session

TURNS = 100_000
HISTORY = 500
SHOWN = 50
ITERATIONS = 60
SECRET = "bench-secret"
FILTERS = ("first_contact=yes", "platform=mastodon", f"handle=user{TURNS - 1}", f"person=Person {TURNS - 1}",
           f"text=hello from {TURNS - 1}")
"""Common first contacts; a platform nobody waits on; one person by handle, by name, by the words they wrote."""


def _seed(path: Path) -> tuple[int, int]:
    url = f"sqlite:///{path}"
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(url)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
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
    engine.dispose()
    return 1, next_id - 1


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


def run(filters: Sequence[str] = FILTERS) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        started = time.perf_counter()
        user_id, messages = _seed(path)
        seeded = time.perf_counter() - started
        settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key=SECRET)
        app = create_app(settings)
        statements: list[str] = []
        for engine in app_services(app).db.engines:
            event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        lines = [f"seeded {TURNS:,} pending turns, {messages:,} messages in {seeded:.1f} s (SQLite file)"]
        with TestClient(app) as client:
            client.cookies.set(SESSION_COOKIE, sign_session(SECRET.encode(), user_id, 3600))
            client.get("/")  # the rate limit takes this process's share of the user's allowance once, not per page
            counts = {}
            for limit in (10, 50):
                statements.clear()
                html = client.get(f"/?limit={limit}").text
                counts[limit] = len(statements)
                assert html.count('<li class="row') == limit
            statements.clear()
            client.get("/people/1")
            person_statements = len(statements)
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
        lines += [
            f"baseline /login (template, no database): median {base[0]:.1f} ms, p99 {base[1]:.1f} ms",
            f"queue page, 10 turns:  median {q10[0]:.1f} ms, p99 {q10[1]:.1f} ms, {counts[10]} SQL statements",
            f"queue page, 50 turns:  median {q50[0]:.1f} ms, p99 {q50[1]:.1f} ms, {counts[50]} SQL statements",
            f"person page ({HISTORY} messages, 50 shown): median {person[0]:.1f} ms, p99 {person[1]:.1f} ms, "
            f"{person_statements} SQL statements",
            f"waiting count (capped at 10,000+): median {count[0]:.1f} ms, p99 {count[1]:.1f} ms",
            *(f"queue page, 10 turns, searched {query!r} ({shown} shown): median {took[0]:.1f} ms, "
              f"p99 {took[1]:.1f} ms" for query, shown, took in searched),
            f"load average during the run: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (two cores)",
            f"statements grow with page size: {'YES (bad)' if counts[50] != counts[10] else 'no'}; "
            f"target <= 100 ms: {'met' if max(q10[0], person[0]) <= 100 else 'MISSED'} (medians, default page 10)",
        ]
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", action="append", dest="filters",
                        help="a search as the page's query string, e.g. 'platform=x&first_contact=yes' (repeatable)")
    for line in run(parser.parse_args(sys.argv[1:]).filters or FILTERS):
        print(line, flush=True)
