"""Finding (or creating) the person behind each handle, many at a time; used by ingest and import alike.

Each operation is a plain function of a synchronous ``Connection`` (see ``assistant.db``), which the ingest
hot path runs through ``Database.run_write``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.db.base import UTCDateTime, utcnow
from assistant.db.bulk import executemany, insert_returning_ids
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


def resolve_people(conn: Connection, brand_id: int, sightings: Iterable[Sighting],
                   quiet: set[int] | None = None) -> Any:
    """Map every sighted handle to its person, creating people on first sight. With ``quiet``, also collects
    the people among them who asked not to be answered (``do_not_reply``), at no extra query.

    Transitional: given an ``AsyncSession`` (callers not yet on connections) it answers an awaitable."""
    if isinstance(conn, AsyncSession):
        listed = list(sightings)
        return conn.run_sync(lambda s: resolve_people(s.connection(), brand_id, listed, quiet))
    first: dict[HandleKey, Sighting] = {}
    for s in sightings:
        first.setdefault((s.platform, s.handle), s)
    found = _existing(conn, brand_id, list(first), quiet)
    missing = [key for key in first if key not in found]
    if missing:
        now = utcnow()
        rows = [{"brand_id": brand_id, "display_name": first[k].display_name or first[k].handle,
                 "followers": first[k].followers, "first_seen_at": first[k].at, "last_seen_at": first[k].at,
                 "do_not_reply": False, "mention_count": 0, "reply_count": 0,
                 "created_at": now} for k in missing]
        new_ids = insert_returning_ids(conn, Person.__table__, rows)
        executemany(conn, _NEW_HANDLES[conn.dialect.name], [
            {"brand_id": brand_id, "person_id": pid, "platform": k[0], "handle": k[1],
             "external_id": first[k].external_id, "created_at": now} for k, pid in zip(missing, new_ids)])
        if conn.dialect.name == "sqlite":
            # BEGIN IMMEDIATE holds the only write lock: nobody can have claimed these handles meanwhile.
            winners = dict(zip(missing, new_ids))
        else:
            winners = _existing(conn, brand_id, missing, quiet)
        # A concurrent writer (PostgreSQL) may have claimed a handle first: drop the person we made for it.
        losers = [pid for k, pid in zip(missing, new_ids) if winners[k] != pid]
        if losers:
            conn.execute(delete(Person).where(Person.id.in_(losers)))
        found.update(winners)
    return found


_NEW_HANDLES = {"postgresql": pg_insert(Handle.__table__).on_conflict_do_nothing(),
                "sqlite": sqlite_insert(Handle.__table__).on_conflict_do_nothing()}
_EXISTING = (select(Handle.platform, Handle.handle, Handle.person_id, Person.do_not_reply)
             .join(Person, Person.id == Handle.person_id)
             .where(Handle.brand_id == bindparam("brand_id"), Handle.platform == bindparam("platform"),
                    Handle.handle.in_(bindparam("handles", expanding=True))))


def _existing(conn: Connection, brand_id: int, keys: list[HandleKey],
              quiet: set[int] | None = None) -> dict[HandleKey, int]:
    found: dict[HandleKey, int] = {}
    by_platform: dict[str, list[str]] = {}
    for platform, handle in keys:
        by_platform.setdefault(platform, []).append(handle)
    for platform, handles in by_platform.items():
        for start in range(0, len(handles), CHUNK):
            rows = conn.execute(_EXISTING, {"brand_id": brand_id, "platform": platform,
                                            "handles": handles[start:start + CHUNK]})
            for p, h, pid, do_not_reply in rows:
                found[(p, h)] = pid
                if do_not_reply and quiet is not None:
                    quiet.add(pid)
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


def _activity_statement() -> Any:
    people = Person.__table__
    c = people.c
    first_at, last_at = bindparam("first_at", type_=UTCDateTime()), bindparam("last_at", type_=UTCDateTime())
    display_name = bindparam("display_name", type_=String())
    followers = bindparam("followers", type_=Integer())
    return (
        update(people).where(c.id == bindparam("pid")).values(
            first_seen_at=case((c.first_seen_at > first_at, first_at), else_=c.first_seen_at),
            last_seen_at=case((c.last_seen_at < last_at, last_at), else_=c.last_seen_at),
            mention_count=c.mention_count + bindparam("mentions", type_=Integer()),
            reply_count=c.reply_count + bindparam("replies", type_=Integer()),
            display_name=case((display_name.is_(None), c.display_name), else_=display_name),
            followers=case((followers.is_(None), c.followers), else_=followers),
        ))


_ACTIVITY = _activity_statement()


def apply_activity(conn: Connection, activity: dict[int, Activity]) -> Any:
    """Fold a batch's activity into the people's first/last seen times and counts, in one statement.

    Transitional: given an ``AsyncSession`` (callers not yet on connections) it answers an awaitable."""
    if isinstance(conn, AsyncSession):
        return conn.run_sync(lambda s: apply_activity(s.connection(), activity))
    if not activity:
        return
    executemany(conn, _ACTIVITY, [
        {"pid": pid, "first_at": a.first_at, "last_at": a.last_at, "mentions": a.mentions, "replies": a.replies,
         "display_name": a.display_name, "followers": a.followers} for pid, a in activity.items()])


_OPT_OUT = update(Person.__table__).where(Person.__table__.c.id == bindparam("person_id")).values(do_not_reply=True)


def opt_out(conn: Connection, person_id: int) -> None:
    """The person asked us to stop: nothing is drafted or sent to them until a reviewer clears the flag."""
    conn.execute(_OPT_OUT, {"person_id": person_id})
