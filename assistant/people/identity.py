"""Finding (or creating) the person behind each handle, many at a time, and folding what a batch of messages
adds into each person's counters; used by ingest, import and the outbox alike. Each is a plain function of the
caller's ``Connection`` (its transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam, case, delete, select, update

from assistant.db.base import UTCDateTime, utcnow
from assistant.db.bulk import executemany, insert_returning_ids, update_rows
from assistant.db.dialect import insert_ignoring_duplicates, writes_are_serial
from assistant.db.lookup import platform_keys, rows_by_platform_keys
from assistant.db.people import Handle, Person

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


def resolve_people(conn: Connection, brand_id: int, sightings: Iterable[Sighting],
                   quiet: set[int] | None = None) -> dict[HandleKey, int]:
    """Map every sighted handle to its person, creating people on first sight. With ``quiet``, also collects
    the people among them who asked not to be answered (``do_not_reply``), at no extra query."""
    first: dict[HandleKey, Sighting] = {}
    for s in sightings:
        first.setdefault((s.platform, s.handle), s)
    found = known_people(conn, brand_id, list(first), quiet)
    missing = [key for key in first if key not in found]
    if missing:
        now = utcnow()
        rows = [{"brand_id": brand_id, "display_name": first[k].display_name or first[k].handle,
                 "followers": first[k].followers, "first_seen_at": first[k].at, "last_seen_at": first[k].at,
                 "do_not_reply": False, "mention_count": 0, "reply_count": 0,
                 "created_at": now} for k in missing]
        new_ids = insert_returning_ids(conn, Person.__table__, rows)
        handles = [{"brand_id": brand_id, "person_id": pid, "platform": k[0], "handle": k[1],  # in key order:
                    "external_id": first[k].external_id, "created_at": now}  # no deadlock
                   for k, pid in sorted(zip(missing, new_ids))]
        if writes_are_serial(conn):  # nobody can have claimed these handles meanwhile
            executemany(conn, insert_ignoring_duplicates(conn, Handle.__table__), handles)
            winners = dict(zip(missing, new_ids))
        else:  # the handles that went in are ours; only those a concurrent writer claimed first are looked up
            claimed = set(map(tuple, conn.execute(_claiming(conn), handles)))
            winners = {k: pid for k, pid in zip(missing, new_ids) if k in claimed}
            if len(winners) < len(missing):
                winners.update(known_people(conn, brand_id, [k for k in missing if k not in claimed], quiet))
        # A concurrent writer may have claimed a handle first: drop the person we made for it.
        losers = [pid for k, pid in zip(missing, new_ids) if winners[k] != pid]
        if losers:
            conn.execute(delete(Person).where(Person.id.in_(losers)))
        found.update(winners)
    return found


_CLAIMING: dict[str, Any] = {}


def _claiming(conn: Connection) -> Any:
    """The handles' ``INSERT ... ON CONFLICT DO NOTHING RETURNING platform, handle``: the keys it stored. Built
    once per dialect."""
    statement = _CLAIMING.get(conn.dialect.name)
    if statement is None:
        statement = _CLAIMING[conn.dialect.name] = insert_ignoring_duplicates(conn, Handle.__table__).returning(
            Handle.platform, Handle.handle)
    return statement


_EXISTING = (select(Handle.platform, Handle.handle, Handle.person_id, Person.do_not_reply)
             .join(Person, Person.id == Handle.person_id)
             .where(Handle.brand_id == bindparam("brand_id"), platform_keys(Handle.platform, Handle.handle)))


def known_people(conn: Connection, brand_id: int, keys: list[HandleKey],
                 quiet: set[int] | None = None) -> dict[HandleKey, int]:
    """The person behind each of these handles that the brand has seen (new handles are left out)."""
    found: dict[HandleKey, int] = {}
    for p, h, pid, do_not_reply in rows_by_platform_keys(conn, _EXISTING, keys, brand_id=brand_id):
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


def apply_activity(conn: Connection, activity: dict[int, Activity]) -> None:
    """Fold a batch's activity into the people's first/last seen times and counts, in one statement. People are
    locked in id order (``update_rows``), so concurrent transactions (PostgreSQL) never wait on each other
    crosswise."""
    update_rows(conn, _ACTIVITY, [
        {"pid": pid, "first_at": a.first_at, "last_at": a.last_at, "mentions": a.mentions, "replies": a.replies,
         "display_name": a.display_name, "followers": a.followers} for pid, a in activity.items()], key="pid")


_OPT_OUT = update(Person.__table__).where(Person.__table__.c.id == bindparam("person_id")).values(do_not_reply=True)


def opt_out(conn: Connection, person_id: int) -> None:
    """The person asked us to stop: nothing is drafted or sent to them until a reviewer clears the flag."""
    conn.execute(_OPT_OUT, {"person_id": person_id})
