"""One person across platforms: suggested merges with their evidence, confirmed by a reviewer, undoable, and
kept in the audit log.

The worker's sweep reads the messages that arrived since its last pass for clues of who wrote them (an
e-mail address, an order number, "I wrote you as @x on Instagram"), stores each clue once per person, and
suggests two people who share one; two people with the same display name on different platforms who wrote
within a day of each other are suggested too. Merging folds the newer person into the older with the people
package's rule and keeps what moved, so an undo puts every row back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
import regex
from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.audit import record
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.memory import IdentityClue, MergeSuggestion, OverdueTurn, Promise, ReplyEdit
from assistant.db.people import Handle, Interaction, Person
from assistant.errors import Conflict, Forbidden, NotFound
from assistant.memory.told_before import TOLD
from assistant.people.service import fold_person, unfold_person

SCAN_BATCH = 2_000
NAME_WINDOW = dt.timedelta(hours=24)
_CLAIM = regex.compile(r"\b(?:wrote|written|messaged|dm(?:'|’)?e?d|tweeted|talked to|contacted|reached)\s+(?:to\s+)?"
                       r"(?:you|u)(?:\s+\w+){0,2}?\s+(?:as|from)\s+@?(?P<handle>[\w.]{2,60})\s+on\s+"
                       r"(?P<platform>instagram|insta|ig|x|twitter|bluesky|bsky|mastodon|threads|facebook|tiktok)\b",
                       regex.I)
_PLATFORM = {"insta": "instagram", "ig": "instagram", "twitter": "x", "bsky": "bluesky"}
MOVED_HERE = (Promise, ReplyEdit, OverdueTurn)
"""Relationship memory's own rows that follow a person into a merge (and back on undo)."""


class SuggestionOut(msgspec.Struct):
    id: int
    person_id: int
    other_person_id: int
    evidence: list[dict[str, Any]]
    status: str
    created_at: dt.datetime
    decided_at: dt.datetime | None


def clues_in(text: str) -> list[tuple[str, str]]:
    """(kind, value) clues of identity in a message."""
    found = [("email", m["value"].lower()) for m in TOLD["e-mail"].finditer(text)]
    found += [("order", m["value"].upper()) for m in TOLD["order number"].finditer(text)]
    for m in _CLAIM.finditer(text):
        platform = m["platform"].lower()
        found.append(("claims", f"{_PLATFORM.get(platform, platform)}:{m['handle'].lower().rstrip('.')}"))
    return list(dict.fromkeys(found))


def scan(conn: Connection, after_id: int) -> int:
    """Read the inbound messages after ``after_id`` for clues, store them, and suggest the merges they point
    to. Answers the last interaction id read (the next pass starts there)."""
    rows = conn.execute(select(Interaction.id, Interaction.brand_id, Interaction.person_id, Interaction.text,
                               Interaction.platform, Interaction.occurred_at)
                        .where(Interaction.id > after_id, Interaction.direction == "inbound")
                        .order_by(Interaction.id).limit(SCAN_BATCH)).all()
    for row in rows:
        for kind, value in clues_in(row.text):
            if kind == "claims":
                platform, handle = value.split(":", 1)
                other = conn.scalar(select(Handle.person_id).where(Handle.brand_id == row.brand_id,
                                                                   Handle.platform == platform, Handle.handle == handle))
                if other is not None:
                    suggest(conn, row.brand_id, row.person_id, other,
                            {"kind": "claims", "detail": f"says they wrote to us as @{handle} on {platform}",
                             "interaction_id": row.id})
                continue
            if not _store_clue(conn, row.brand_id, row.person_id, kind, value, row.id):
                continue
            for other in conn.execute(select(IdentityClue.person_id).where(
                    IdentityClue.brand_id == row.brand_id, IdentityClue.kind == kind, IdentityClue.value == value,
                    IdentityClue.person_id != row.person_id)).scalars():
                suggest(conn, row.brand_id, row.person_id, other,
                        {"kind": kind, "detail": f"both wrote the same {'e-mail address' if kind == 'email' else 'order number'} {value}",
                         "interaction_id": row.id})
    _same_names(conn, {(r.brand_id, r.person_id) for r in rows})
    return rows[-1].id if rows else after_id


def _store_clue(conn: Connection, brand_id: int, person_id: int, kind: str, value: str, interaction_id: int) -> bool:
    """Store a clue once per person; False when this person already had it."""
    try:
        with conn.begin_nested():
            conn.execute(IdentityClue.__table__.insert().values(
                brand_id=brand_id, person_id=person_id, kind=kind, value=value[:320], interaction_id=interaction_id,
                created_at=utcnow()))
    except IntegrityError:
        return False
    return True


def _same_names(conn: Connection, seen: set[tuple[int, int]]) -> None:
    """People who just wrote, and another person of the brand with the same display name on another platform
    who wrote within a day: likely one human."""
    for brand_id, person_id in seen:
        me = conn.execute(select(Person.display_name, Person.last_seen_at).where(
            Person.id == person_id, Person.merged_into_id.is_(None))).first()
        name = " ".join((me.display_name or "").split()).lower() if me else ""
        if len(name) < 6 or " " not in name:
            continue  # a single short name says little
        mine = set(conn.execute(select(Handle.platform).where(Handle.person_id == person_id)).scalars())
        for other, last_seen in conn.execute(select(Person.id, Person.last_seen_at).where(
                Person.brand_id == brand_id, Person.id != person_id, Person.merged_into_id.is_(None),
                func.lower(Person.display_name) == name,
                Person.last_seen_at.between(me.last_seen_at - NAME_WINDOW, me.last_seen_at + NAME_WINDOW))):
            theirs = set(conn.execute(select(Handle.platform).where(Handle.person_id == other)).scalars())
            if theirs and mine and not theirs & mine:
                hours = abs((me.last_seen_at - last_seen).total_seconds()) / 3600
                suggest(conn, brand_id, person_id, other,
                        {"kind": "name", "detail": f"same display name “{me.display_name}” on "
                         f"{', '.join(sorted(mine))} and {', '.join(sorted(theirs))}, {hours:.0f} h apart"})


def suggest(conn: Connection, brand_id: int, a: int, b: int, evidence: dict[str, Any]) -> None:
    """Suggest (or add evidence to the open suggestion) that people ``a`` and ``b`` are one; a pair a reviewer
    merged or dismissed is not suggested again."""
    if a == b:
        return
    first, second = sorted((a, b))
    found = conn.execute(select(MergeSuggestion.id, MergeSuggestion.status, MergeSuggestion.evidence).where(
        MergeSuggestion.person_id == first, MergeSuggestion.other_person_id == second)).first()
    if found is None:
        try:
            with conn.begin_nested():
                conn.execute(MergeSuggestion.__table__.insert().values(
                    brand_id=brand_id, person_id=first, other_person_id=second, evidence=[evidence], score=1,
                    status="open", created_at=utcnow()))
        except IntegrityError:
            pass  # another worker suggested it first
        return
    known = {(e.get("kind"), e.get("detail")) for e in found.evidence or []}
    if found.status == "open" and (evidence["kind"], evidence["detail"]) not in known:
        conn.execute(update(MergeSuggestion).where(MergeSuggestion.id == found.id).values(
            evidence=[*(found.evidence or []), evidence], score=len(known) + 1))


def suggestions(conn: Connection, brand_id: int, statuses: Sequence[str] = ("open", "merged")) -> list[SuggestionOut]:
    rows = conn.execute(select(MergeSuggestion.__table__).where(MergeSuggestion.brand_id == brand_id,
                                                                MergeSuggestion.status.in_(list(statuses)))
                        .order_by(MergeSuggestion.score.desc(), MergeSuggestion.id.desc()).limit(200)).all()
    return [SuggestionOut(s.id, s.person_id, s.other_person_id, list(s.evidence or []), s.status, s.created_at,
                          s.decided_at) for s in rows]


def _load(conn: Connection, actor: Principal, suggestion_id: int, status: str) -> Any:
    if not actor.is_user:
        raise Forbidden("Only a reviewer or admin may decide on a merge")
    found = conn.execute(select(MergeSuggestion.__table__).where(MergeSuggestion.id == suggestion_id,
                                                                 MergeSuggestion.brand_id == actor.brand_id)
                         .with_for_update()).first()
    if found is None:
        raise NotFound(f"no merge suggestion {suggestion_id}")
    if found.status != status:
        raise Conflict(f"merge suggestion {suggestion_id} is {found.status}")
    return found


def confirm(conn: Connection, actor: Principal, suggestion_id: int) -> None:
    """A reviewer confirms: the newer person is folded into the older, memory's rows follow, all audited."""
    found = _load(conn, actor, suggestion_id, "open")
    keep, fold = found.person_id, found.other_person_id
    moved = fold_person(conn, actor.brand_id, keep, fold)
    for model in MOVED_HERE:
        key = model.turn_id if model is OverdueTurn else model.id
        ids = list(conn.execute(select(key).where(model.person_id == fold)).scalars())
        if ids:
            conn.execute(update(model).where(key.in_(ids)).values(person_id=keep))
        moved[model.__tablename__] = ids
    conn.execute(update(MergeSuggestion).where(MergeSuggestion.id == suggestion_id).values(
        status="merged", moved=moved, decided_by_user_id=actor.id, decided_at=utcnow()))
    record(conn, actor, "person.merged", "person", keep, brand_id=actor.brand_id, other_id=fold,
              suggestion_id=suggestion_id, evidence=found.evidence)


def undo(conn: Connection, actor: Principal, suggestion_id: int) -> None:
    """Undo a confirmed merge: every row that moved goes back, the two people stand apart again."""
    found = _load(conn, actor, suggestion_id, "merged")
    keep, fold, moved = found.person_id, found.other_person_id, dict(found.moved or {})
    unfold_person(conn, actor.brand_id, keep, fold, moved)
    for model in MOVED_HERE:
        key = model.turn_id if model is OverdueTurn else model.id
        ids = moved.get(model.__tablename__) or []
        if ids:
            conn.execute(update(model).where(key.in_(ids), model.person_id == keep).values(person_id=fold))
    conn.execute(update(MergeSuggestion).where(MergeSuggestion.id == suggestion_id).values(
        status="undone", decided_by_user_id=actor.id, decided_at=utcnow()))
    record(conn, actor, "person.unmerged", "person", keep, brand_id=actor.brand_id, other_id=fold,
              suggestion_id=suggestion_id)


def dismiss(conn: Connection, actor: Principal, suggestion_id: int) -> None:
    _load(conn, actor, suggestion_id, "open")
    conn.execute(update(MergeSuggestion).where(MergeSuggestion.id == suggestion_id).values(
        status="dismissed", decided_by_user_id=actor.id, decided_at=utcnow()))
    record(conn, actor, "merge.dismissed", "merge_suggestion", suggestion_id, brand_id=actor.brand_id)


def names_of(conn: Connection, brand_id: int, ids: set[int]) -> dict[int, str]:
    """Display names for the suggestions page."""
    if not ids:
        return {}
    return {pid: name or f"person {pid}" for pid, name in conn.execute(
        select(Person.id, Person.display_name).where(Person.brand_id == brand_id, Person.id.in_(ids)))}


class Scanner:
    """The sweep's clue reader: remembers where the last pass stopped (in this process; a fresh process starts
    with the last day, and reading a message twice is harmless)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.after_id: int | None = None

    async def __call__(self) -> None:
        if self.after_id is None:
            since = utcnow() - dt.timedelta(days=1)
            self.after_id = await self.db.run_read(lambda conn: conn.scalar(
                select(func.coalesce(func.max(Interaction.id), 0)).where(Interaction.received_at < since)) or 0)
        self.after_id = await self.db.run_write(scan, self.after_id)


__all__ = ["Scanner", "SuggestionOut", "clues_in", "confirm", "dismiss", "names_of", "scan", "suggest", "suggestions", "undo"]
