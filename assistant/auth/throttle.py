"""Throttles that hold across processes: sign-in attempts and failed authentication, counted in the database.

Each attempt is *reserved* before any password or token is checked, in one write transaction that locks the
counters (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite): thirty guesses sent at once are
counted one after another, so no more than the free allowance is ever checked. Past the allowance each further
attempt moves the next allowed time by a growing delay (1 s, 2 s, 4 s, … up to a cap), rather than locking
the account: the caller is told how long to wait (429 with ``Retry-After``). A quiet period forgets the count.

Keys are hashed (no email address or network address is stored) and name what they count:
- sign-in per (address, account): the owner's own typos; small allowance, cap ``login_lockout_seconds``;
- sign-in per account, any address: guessing spread over many addresses; a larger allowance and a short cap,
  so strangers can slow a reviewer's sign-in by seconds but never lock them out;
- sign-in per address, any account: one address spraying many accounts;
- failed bearer-token authentication per address;
- requests per minute per API key or user (API and pages): ``take_allowance``, a bucket kept as one time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from assistant.db.throttles import Throttle, ensure_rows


def hashed_key(name: str, *parts: str) -> str:
    """A counter's key: what it counts, and a hash of whom (no address or email is stored)."""
    digest = hashlib.sha256("\x00".join((name, *parts)).encode()).hexdigest()[:40]
    return f"{name}:{digest}"


@dataclass(frozen=True)
class Rule:
    name: str
    free: int
    """Attempts allowed without delay."""
    cap_seconds: float
    """The longest delay between two attempts."""
    forget_seconds: float = 3600.0
    """A key quiet this long starts again from zero."""

    def key(self, *parts: str) -> str:
        return hashed_key(self.name, *parts)

    def delay(self, count: int) -> float:
        if count < self.free:
            return 0.0
        return min(self.cap_seconds, 2.0 ** (count - self.free))


def reserve(conn: Connection, keys: list[tuple[Rule, str]], now: dt.datetime) -> int:
    """Take one attempt under every key, or none: answers 0 when allowed (each count grows and its next allowed
    time moves by its rule's delay), else the whole seconds to wait (nothing is counted then)."""
    ensure_rows(conn, [key for _, key in keys], now)
    rows = {row.key: row for row in conn.execute(
        select(Throttle.key, Throttle.count, Throttle.since, Throttle.next_at)
        .where(Throttle.key.in_([key for _, key in keys])).order_by(Throttle.key).with_for_update())}
    wait = max((rows[key].next_at - now).total_seconds() for _, key in keys)
    if wait > 0:
        return max(1, math.ceil(wait))
    for rule, key in keys:
        row = rows[key]
        fresh = (now - row.next_at).total_seconds() > rule.forget_seconds
        count = 1 if fresh else row.count + 1
        conn.execute(update(Throttle).where(Throttle.key == key).values(
            count=count, since=now if fresh else row.since,
            next_at=now + dt.timedelta(seconds=rule.delay(count))))
    return 0


def forget(conn: Connection, keys: list[str]) -> None:
    """A success clears these counters (the account's own, after its password was right)."""
    conn.execute(delete(Throttle).where(Throttle.key.in_(keys)))


def take_allowance(conn: Connection, key: str, per_minute: int, want: int, now: dt.datetime) -> tuple[int, int]:
    """Up to ``want`` requests from ``key``'s allowance of ``per_minute`` (bursts up to a tenth of it): answers how
    many were granted (0 to ``want``) and, when none, the whole seconds to wait.

    The bucket is one time per key (GCRA): ``next_at`` is when the bucket would be full again at the steady rate.
    A request is allowed while that time is less than a burst ahead of now, and each granted one moves it on by
    one interval, so however many processes ask, no more than the rate plus one burst is ever granted."""
    interval = 60.0 / per_minute
    burst = max(1.0, per_minute / 10.0) * interval
    ensure_rows(conn, [key], now)
    next_at = conn.execute(select(Throttle.next_at).where(Throttle.key == key).with_for_update()).scalar_one()
    full_at = max(next_at, now)
    room = (burst - (full_at - now).total_seconds()) / interval
    granted = max(0, min(want, int(room + 1e-9)))
    if granted == 0:
        return 0, max(1, math.ceil(interval - room * interval))
    conn.execute(update(Throttle).where(Throttle.key == key).values(
        next_at=full_at + dt.timedelta(seconds=granted * interval)))
    return granted, 0
