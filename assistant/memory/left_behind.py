"""Nobody left behind: the people whose last message got no reply, with why and since when.

A person is left behind when their newest turn was rejected, skipped or failed for good, or is still open
(drafting, in review, escalated) past the brand's ``[service] max_wait``. Each reason is one range scan of the
turns' queue index (brand, status, waiting_since, id) with a check that no newer turn of the person exists;
the scans are merged in order of waiting (longest first), so a page costs the same at 100,000 people.

The sweep sends ``turn.overdue`` once per turn that passes ``max_wait``: the ``overdue_turns`` row is the
"already told" mark, inserted under its primary key so two workers never both send it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import aliased

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.dialect import insert_ignoring_duplicates
from assistant.db.memory import OverdueTurn
from assistant.db.people import Handle, Person
from assistant.db.tenancy import Brand
from assistant.db.turns import Turn
from assistant.errors import ValidationFailed
from assistant.pagination import AfterTime, Page, decode_cursor, encode_cursor
from assistant.people.schemas import HandleOut
from assistant.policy.service import policy_of
from assistant.webhooks.events import emit

CLOSED_UNANSWERED = {"rejected": "rejected", "skipped": "skipped", "failed": "failed"}
STILL_WAITING = ("drafting", "pending_review", "escalated")
WHY = ("rejected", "skipped", "failed", "overdue")
OVERDUE_BATCH = 500


class PersonRef(msgspec.Struct):
    id: int
    display_name: str
    handles: list[HandleOut]


class LeftBehind(msgspec.Struct):
    person: PersonRef
    last_mention_at: dt.datetime
    why: str
    since: dt.datetime
    """When they were left: the decision (rejected, skipped, failed), or when ``max_wait`` ran out."""
    turn_id: int
    waiting_since: dt.datetime


_NEWER = aliased(Turn)
_NEWEST_OF_PERSON = ~exists().where(_NEWER.person_id == Turn.person_id, _NEWER.id > Turn.id)
_TIME = Turn.waiting_since.type
SCANS = [(why, status, False) for status, why in CLOSED_UNANSWERED.items()] + \
        [("overdue", status, True) for status in STILL_WAITING]
"""(why, status, past max_wait?): one range scan of the queue index each."""
COUNT_CAP = 1_000
"""The queue shows "1,000+" beyond this: counting stops there, so the count costs the same at any size."""


@functools.cache
def _scan(status: str, overdue: bool, after: bool) -> Select[Any]:
    """Built once, run with parameters (building a statement cost more than SQLite running it)."""
    query = select(Turn.id, Turn.person_id, Turn.status, Turn.waiting_since, Turn.decided_at, Turn.updated_at).where(
        Turn.brand_id == bindparam("brand_id"), Turn.status == status, _NEWEST_OF_PERSON)
    if overdue:
        query = query.where(Turn.waiting_since < bindparam("cutoff", type_=_TIME))
    if after:
        at = bindparam("at", type_=_TIME)
        query = query.where(or_(Turn.waiting_since > at, and_(Turn.waiting_since == at, Turn.id > bindparam("last_id"))))
    return query.order_by(Turn.waiting_since, Turn.id).limit(bindparam("limit"))


@functools.cache
def _count() -> Select[Any]:
    counts = []
    for _, status, overdue in SCANS:
        inner = select(Turn.id).where(Turn.brand_id == bindparam("brand_id"), Turn.status == status, _NEWEST_OF_PERSON)
        if overdue:
            inner = inner.where(Turn.waiting_since < bindparam("cutoff", type_=_TIME))
        counts.append(select(func.count()).select_from(inner.limit(bindparam("cap")).subquery()).scalar_subquery())
    return select(*counts)


def left_behind(conn: Connection, brand_id: int, *, max_wait: dt.timedelta, now: dt.datetime, limit: int,
                cursor: str | None, why: str | None = None) -> Page[LeftBehind]:
    """One page of the brand's left-behind people, longest waiting first."""
    if why is not None and why not in WHY:
        raise ValidationFailed.field("why", f"use one of {', '.join(WHY)}")
    after = decode_cursor(cursor, AfterTime)
    params: dict[str, Any] = {"brand_id": brand_id, "cutoff": now - max_wait, "limit": limit + 1}
    if after is not None:
        params["at"], params["last_id"] = after.at, after.id
    rows = []
    for reason, status, overdue in SCANS:
        if why is None or reason == why:
            rows.extend(conn.execute(_scan(status, overdue, after is not None), params).all())
    rows.sort(key=lambda r: (r.waiting_since, r.id))
    page, more = rows[:limit], len(rows) > limit
    people = _people(conn, [r.person_id for r in page])
    items = []
    for r in page:
        person, last_seen = people[r.person_id]
        if r.status in CLOSED_UNANSWERED:
            why_, since = CLOSED_UNANSWERED[r.status], r.decided_at or r.updated_at
        else:
            why_, since = "overdue", r.waiting_since + max_wait
        items.append(LeftBehind(person, last_seen, why_, since, r.id, r.waiting_since))
    next_cursor = encode_cursor(AfterTime(page[-1].waiting_since, page[-1].id)) if more else None
    return Page(items=items, next_cursor=next_cursor)


def left_behind_count(conn: Connection, brand_id: int, *, max_wait: dt.timedelta, now: dt.datetime,
                      cap: int = COUNT_CAP) -> int:
    """How many people are left behind, counted up to ``cap + 1`` (show "1,000+"), in one statement."""
    row = conn.execute(_count(), {"brand_id": brand_id, "cutoff": now - max_wait, "cap": cap + 1}).one()
    return min(cap + 1, sum(int(n or 0) for n in row))


_HANDLES = (select(Handle.person_id, Handle.platform, Handle.handle)
            .where(Handle.person_id.in_(bindparam("ids", expanding=True))).order_by(Handle.id))
_PEOPLE = select(Person.id, Person.display_name, Person.last_seen_at).where(
    Person.id.in_(bindparam("ids", expanding=True)))


def _people(conn: Connection, person_ids: Sequence[int]) -> dict[int, tuple[PersonRef, dt.datetime]]:
    if not person_ids:
        return {}
    ids = list(set(person_ids))
    handles: dict[int, list[HandleOut]] = {}
    for person_id, platform, handle in conn.execute(_HANDLES, {"ids": ids}):
        handles.setdefault(person_id, []).append(HandleOut(platform, handle))
    return {p.id: (PersonRef(p.id, p.display_name or "", handles.get(p.id, [])), p.last_seen_at)
            for p in conn.execute(_PEOPLE, {"ids": ids})}


def brand_max_wait(conn: Connection, brand_id: int) -> dt.timedelta:
    return policy_of(conn.scalar(select(Brand.policy_toml).where(Brand.id == brand_id))).max_wait


def report_overdue(conn: Connection, now: dt.datetime) -> list[int]:
    """Mark each open turn that passed its brand's ``max_wait`` and send ``turn.overdue`` for it, once: up to
    ``OVERDUE_BATCH`` turns per brand and sweep, marked in one statement that skips the turns another worker
    marked first (theirs to tell). A savepoint and an insert per turn cost 0.7 ms of CPU each on PostgreSQL, and
    two workers sweeping a backlog at once caught each other's rows as errors."""
    reported = []
    for brand_id, source in conn.execute(select(Brand.id, Brand.policy_toml)).all():
        max_wait = policy_of(source).max_wait
        told = exists().where(OverdueTurn.turn_id == Turn.id)
        late = conn.execute(select(Turn.id, Turn.person_id, Turn.status, Turn.waiting_since).where(
            Turn.brand_id == brand_id, Turn.status.in_(STILL_WAITING), Turn.waiting_since < now - max_wait, ~told)
            .order_by(Turn.waiting_since, Turn.id).limit(OVERDUE_BATCH)).all()
        if not late:
            continue
        marked = set(conn.execute(_marking(conn), [
            {"turn_id": turn.id, "brand_id": brand_id, "person_id": turn.person_id,
             "waiting_since": turn.waiting_since, "created_at": now} for turn in late]).scalars())
        ours = [turn for turn in late if turn.id in marked]
        emit(conn, brand_id, "turn.overdue", [
            {"turn_id": turn.id, "person_id": turn.person_id, "status": turn.status,
             "waiting_since": turn.waiting_since.isoformat(), "max_wait_seconds": int(max_wait.total_seconds())}
            for turn in ours])
        reported += [turn.id for turn in ours]
    return reported


def _marking(conn: Connection) -> Any:
    """``INSERT INTO overdue_turns ... ON CONFLICT DO NOTHING RETURNING turn_id``: the turns this sweep marked."""
    return insert_ignoring_duplicates(conn, OverdueTurn.__table__).returning(OverdueTurn.turn_id)


async def list_left_behind(db: Database, brand_id: int, *, limit: int, cursor: str | None,
                           why: str | None = None) -> Page[LeftBehind]:
    def read(conn: Connection) -> Page[LeftBehind]:
        return left_behind(conn, brand_id, max_wait=brand_max_wait(conn, brand_id), now=utcnow(), limit=limit,
                           cursor=cursor, why=why)
    return await db.run_read(read)


async def count_left_behind(db: Database, brand_id: int, *, cap: int = COUNT_CAP) -> int:
    """For the queue page: how many people are left behind now (up to ``cap + 1``)."""
    return await db.run_read(lambda conn: left_behind_count(conn, brand_id, max_wait=brand_max_wait(conn, brand_id),
                                                            now=utcnow(), cap=cap))


async def run_overdue_sweep(db: Database) -> list[int]:
    return await db.run_write(report_overdue, utcnow())


__all__ = ["LeftBehind", "PersonRef", "count_left_behind", "left_behind", "left_behind_count", "list_left_behind",
           "report_overdue", "run_overdue_sweep"]
