"""The share of people answered, by audience size: fairness is not only how long people wait, but whether
the quiet ones are answered at all."""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import Connection, func, select

from assistant.db import Database
from assistant.db.people import Interaction
from assistant.db.turns import Turn
from assistant.review.service import AUDIENCE_BUCKETS, audience_bucket

ANSWERED = ("approved", "posted")


class AnsweredShare(msgspec.Struct):
    group: str
    people: int
    answered: int
    share: float | None


def answered_share(conn: Connection, brand_id: int, *, since: dt.datetime, until: dt.datetime) -> list[AnsweredShare]:
    """Of the people whose turns began in [since, until), how many got at least one reply approved, by the
    most followers they reported in those turns."""
    followers = select(func.max(Interaction.followers)).where(Interaction.turn_id == Turn.id).scalar_subquery()
    rows = conn.execute(select(Turn.person_id, Turn.status, followers).where(
        Turn.brand_id == brand_id, Turn.waiting_since >= since, Turn.waiting_since < until)).all()
    most: dict[int, int | None] = {}
    answered: set[int] = set()
    for person_id, status, count in rows:
        before = most.get(person_id)
        most[person_id] = count if before is None else before if count is None else max(before, count)
        if status in ANSWERED:
            answered.add(person_id)
    groups: dict[str, list[int]] = {name: [0, 0] for name, _ in AUDIENCE_BUCKETS}
    for person_id, count in most.items():
        group = groups[audience_bucket(count)]
        group[0] += 1
        group[1] += person_id in answered
    return [AnsweredShare(name, people, got, got / people if people else None)
            for name, (people, got) in groups.items()]


async def answered_shares(db: Database, brand_id: int, *, since: dt.datetime, until: dt.datetime) -> list[AnsweredShare]:
    return await db.run_read(lambda conn: answered_share(conn, brand_id, since=since, until=until))


__all__ = ["AnsweredShare", "answered_share", "answered_shares"]
