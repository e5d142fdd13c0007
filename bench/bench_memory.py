"""Relationship memory's hot spots. Targets: promise detection and the told-before patterns under 1 ms per
reply (like the policy check); the left-behind page at 100,000 people under 50 ms. Baselines from the same
run: 20 ``str.find`` calls on the reply; the queue's own first-page select on the same database."""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, select

from assistant.db.migrate import upgrade
from assistant.db.people import Handle, Person
from assistant.db.tenancy import Brand
from assistant.db.turns import Turn
from assistant.memory.left_behind import left_behind, left_behind_count
from assistant.memory.told_before import Earlier, told_before
from assistant.policy import default_policy
from assistant.promises.detection import find_promises

ROUNDS = 2000
PEOPLE = 100_000
QUERIES = 50
REPLY = ("@miriam Thanks for telling us, Miriam. The parcel left our depot late, which is on us, not you. "
         "I'll check with the warehouse today and we'll get back to you here by Friday; if you'd rather, DM us "
         "your order number and we'll sort it from there. Could you also send us your order number?")
NEEDLES = ["get back to you", "be in touch", "follow up", "keep you posted", "let you know", "check", "look into",
           "find out", "e-mail you", "email you", "dm us", "message us", "order number", "device", "city",
           "refund", "replace", "exchange", "repair", "eligible"]
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
HISTORY = [Earlier(n, "mention" if n % 2 else "reply",
                   f"Message {n}: my order #A-{44000 + n} is late, I'm in Lisbon" if n % 2 else
                   f"Reply {n}: we'll refund you in full, sorry for the wait.", NOW - dt.timedelta(days=n))
           for n in range(20)]


def _micro(fn) -> list[float]:
    fn()
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _figures(name: str, samples: list[float], unit: str = "µs") -> str:
    samples = sorted(samples)
    p99 = samples[max(0, int(len(samples) * 0.99) - 1)]
    return f"{name:<52} median {statistics.median(samples):9.1f} {unit}   p99 {p99:9.1f} {unit}"


def _seed(path: Path) -> int:
    """100,000 people, one turn each: 10 % rejected, 5 % skipped, 2 % failed, 20 % waiting (half of them past
    max_wait), the rest answered."""
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        brand_id = conn.execute(insert(Brand).values(slug="bench", name="Bench", created_at=NOW)).inserted_primary_key[0]
        conn.execute(insert(Person), [{"id": n, "brand_id": brand_id, "display_name": f"P{n}", "do_not_reply": False,
                                      "first_seen_at": NOW, "last_seen_at": NOW, "mention_count": 1, "reply_count": 0,
                                      "created_at": NOW} for n in range(1, PEOPLE + 1)])
        conn.execute(insert(Handle), [{"brand_id": brand_id, "person_id": n, "platform": "x", "handle": f"p{n}",
                                      "created_at": NOW} for n in range(1, PEOPLE + 1)])
        rows = []
        for n in range(1, PEOPLE + 1):
            k = n % 100
            status = ("rejected" if k < 10 else "skipped" if k < 15 else "failed" if k < 17 else
                      "pending_review" if k < 37 else "posted")
            since = NOW - dt.timedelta(minutes=n % 600 if status == "pending_review" and k < 27 else 600 + n % 5000)
            rows.append({"brand_id": brand_id, "person_id": n, "platform": "x", "status": status,
                         "waiting_since": since, "version": 1, "created_at": since, "updated_at": since,
                         "decided_at": since + dt.timedelta(minutes=5)})
        conn.execute(insert(Turn), rows)
    engine.dispose()
    return brand_id


def run() -> list[str]:
    policy = default_policy()
    assert {p.kind for p in find_promises(policy, REPLY)} == {"get_back", "check", "dm"}
    assert [f["rule"] for f in told_before(REPLY, HISTORY, person_id=1)] == ["told_before.reask"]
    lowered = REPLY.lower()
    lines = [f"# {ROUNDS} replies of {len(REPLY)} characters; told-before against {len(HISTORY)} earlier messages",
             _figures("find_promises (shipped [promises], 4 kinds)", _micro(lambda: find_promises(policy, REPLY))),
             _figures("told_before (re-asks and contradictions)",
                      _micro(lambda: told_before(REPLY, HISTORY, person_id=1))),
             _figures("baseline: 20 str.find on the lowered reply", _micro(lambda: [lowered.find(n) for n in NEEDLES]))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        brand_id = _seed(path)
        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            queue = (select(Turn.id).where(Turn.brand_id == brand_id, Turn.status == "pending_review")
                     .order_by(Turn.waiting_since, Turn.id).limit(50))
            page = left_behind(conn, brand_id, max_wait=dt.timedelta(hours=4), now=NOW, limit=50, cursor=None)
            assert len(page.items) == 50 and page.next_cursor
            timed = {"left_behind page (50, all reasons)": lambda: left_behind(
                         conn, brand_id, max_wait=dt.timedelta(hours=4), now=NOW, limit=50, cursor=None),
                     "left_behind next page": lambda: left_behind(
                         conn, brand_id, max_wait=dt.timedelta(hours=4), now=NOW, limit=50, cursor=page.next_cursor),
                     "left_behind count (capped at 1,000)": lambda: left_behind_count(
                         conn, brand_id, max_wait=dt.timedelta(hours=4), now=NOW),
                     "baseline: the queue's first-page select": lambda: conn.execute(queue).all()}
            lines.append(f"# {PEOPLE:,} people on SQLite, {QUERIES} runs each, target < 50 ms")
            for name, fn in timed.items():
                fn()
                samples = []
                for _ in range(QUERIES):
                    started = time.perf_counter_ns()
                    fn()
                    samples.append((time.perf_counter_ns() - started) / 1e6)
                lines.append(_figures(name, samples, "ms"))
        engine.dispose()
    return lines
