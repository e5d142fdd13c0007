"""Finding (or creating) the person behind each handle, many at a time; used by ingest and import alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, bindparam, case, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.db.base import UTCDateTime, utcnow
from assistant.db.people import Handle, Person

CHUNK = 400

HandleKey = tuple[str, str]
"""(platform, handle): lower-cased, without @."""


@dataclass
class Sighting:
    """An author seen in one message."""

    platform: str
    handle: str
    at: dt.datetime
    external_id: str | None = None
    display_name: str | None = None
    followers: int | None = None
    inbound: bool = True


async def insert_returning_ids(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` and answer their new ids, in order, in a single executemany.

    On SQLite, SQLAlchemy's ``RETURNING ... sort_by_parameter_order`` falls back to one statement per row (a
    thread hop each through aiosqlite: two thirds of a 1,000-mention batch's time). Writes there run in
    ``BEGIN IMMEDIATE``, which holds the file's only write lock, so the ids after ``MAX(id)`` are ours to give.
    """
    if not rows:
        return []
    if session.bind.dialect.name == "sqlite":
        start = int(await session.scalar(select(func.max(table.c.id))) or 0)
        ids = list(range(start + 1, start + 1 + len(rows)))
        await session.execute(table.insert(), [dict(row, id=new_id) for row, new_id in zip(rows, ids)])
        return ids
    return list((await session.execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), rows)).scalars())


async def resolve_people(session: AsyncSession, brand_id: int, sightings: Iterable[Sighting]) -> dict[HandleKey, int]:
    """Map every sighted handle to its person, creating people on first sight."""
    first: dict[HandleKey, Sighting] = {}
    for s in sightings:
        first.setdefault((s.platform, s.handle), s)
    found = await _existing(session, brand_id, list(first))
    missing = [key for key in first if key not in found]
    if missing:
        now = utcnow()
        rows = [{"brand_id": brand_id, "display_name": first[k].display_name or first[k].handle,
                 "followers": first[k].followers, "first_seen_at": first[k].at, "last_seen_at": first[k].at,
                 "do_not_reply": False, "mention_count": 0, "reply_count": 0, "created_at": now} for k in missing]
        new_ids = await insert_returning_ids(session, Person.__table__, rows)
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(Handle.__table__).on_conflict_do_nothing(), [
            {"brand_id": brand_id, "person_id": pid, "platform": k[0], "handle": k[1],
             "external_id": first[k].external_id, "created_at": now} for k, pid in zip(missing, new_ids)])
        winners = await _existing(session, brand_id, missing)
        # A concurrent writer (PostgreSQL) may have claimed a handle first: drop the person we made for it.
        losers = [pid for k, pid in zip(missing, new_ids) if winners[k] != pid]
        if losers:
            await session.execute(delete(Person).where(Person.id.in_(losers)))
        found.update(winners)
    return found


async def _existing(session: AsyncSession, brand_id: int, keys: list[HandleKey]) -> dict[HandleKey, int]:
    found: dict[HandleKey, int] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        rows = await session.execute(
            select(Handle.platform, Handle.handle, Handle.person_id)
            .where(Handle.brand_id == brand_id, tuple_(Handle.platform, Handle.handle).in_(chunk)))
        found.update({(p, h): pid for p, h, pid in rows})
    return found


@dataclass
class Activity:
    """What a batch of messages adds to one person's counters."""

    first_at: dt.datetime
    last_at: dt.datetime
    mentions: int = 0
    replies: int = 0
    display_name: str | None = None
    followers: int | None = None

    def add(self, at: dt.datetime, inbound: bool, display_name: str | None = None,
            followers: int | None = None) -> None:
        self.first_at = min(self.first_at, at)
        if at >= self.last_at:
            self.last_at = at
            self.display_name = display_name or self.display_name
            self.followers = followers if followers is not None else self.followers
        if inbound:
            self.mentions += 1
        else:
            self.replies += 1


def tally(activity: dict[int, Activity], person_id: int, at: dt.datetime, inbound: bool,
          display_name: str | None = None, followers: int | None = None) -> None:
    if person_id not in activity:
        activity[person_id] = Activity(first_at=at, last_at=at)
    activity[person_id].add(at, inbound, display_name, followers)


async def apply_activity(session: AsyncSession, activity: dict[int, Activity]) -> None:
    """Fold a batch's activity into the people's first/last seen times and counts, in one statement."""
    if not activity:
        return
    people = Person.__table__
    c = people.c
    first_at, last_at = bindparam("first_at", type_=UTCDateTime()), bindparam("last_at", type_=UTCDateTime())
    display_name = bindparam("display_name", type_=String())
    followers = bindparam("followers", type_=Integer())
    statement = (
        update(people).where(c.id == bindparam("pid")).values(
            first_seen_at=case((c.first_seen_at > first_at, first_at), else_=c.first_seen_at),
            last_seen_at=case((c.last_seen_at < last_at, last_at), else_=c.last_seen_at),
            mention_count=c.mention_count + bindparam("mentions", type_=Integer()),
            reply_count=c.reply_count + bindparam("replies", type_=Integer()),
            display_name=case((display_name.is_(None), c.display_name), else_=display_name),
            followers=case((followers.is_(None), c.followers), else_=followers),
        ))
    await session.execute(statement, [
        {"pid": pid, "first_at": a.first_at, "last_at": a.last_at, "mentions": a.mentions, "replies": a.replies,
         "display_name": a.display_name, "followers": a.followers} for pid, a in activity.items()])
