"""Ingest: a mention is stored, tied to its person, and placed in a turn, all in one transaction.

Everything works a batch at a time (a single mention is a batch of one), so a thousand mentions cost a
handful of statements, not thousands. The natural key (brand, platform, external_id) makes every retry safe:
a mention seen before answers with the ids it got the first time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, bindparam, case, select, update
from sqlalchemy.exc import IntegrityError

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.people import Interaction
from assistant.db.turns import OPEN_TURN_STATES, Draft, Turn
from assistant.errors import NotFound
from assistant.jobs import queue
from assistant import validation
from assistant.mentions.schemas import MentionIn, MentionOut, TurnRef
from assistant.db.bulk import executemany, insert_returning_ids_sync
from assistant.db.group_commit import GroupCommit
from assistant.db.lookup import platform_keys, rows_by_platform_keys
from assistant.people.identity import Sighting, apply_activity, resolve_people, tally
from assistant.problems import validation_failed

CHUNK = 400


@dataclass
class Mention:
    """A mention that passed validation, normalised."""

    platform: str
    external_id: str
    text: str
    created_at: dt.datetime
    handle: str
    author_external_id: str | None
    display_name: str | None
    followers: int | None
    in_reply_to: str | None
    conversation_id: str | None
    url: str | None
    lang: str | None
    raw: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.platform, self.external_id


@dataclass
class Outcome:
    id: int
    person_id: int
    turn_id: int | None
    status: str
    duplicate: bool


def validate(payload: MentionIn | dict[str, Any], *, now: dt.datetime | None = None) -> Mention:
    """Check one mention beyond its JSON shape. Raises ``ValidationFailed`` naming the field."""
    if isinstance(payload, dict):
        try:
            payload = msgspec.convert(payload, MentionIn)
        except msgspec.ValidationError as exc:
            raise validation_failed(exc) from None
    m = payload
    return Mention(
        platform=validation.platform_token(m.platform),
        external_id=validation.identifier(m.external_id, "external_id"),
        text=validation.clean_text(m.text),
        created_at=validation.timestamp(m.created_at, now=now or utcnow()),
        handle=validation.handle_key(m.author.handle),
        author_external_id=validation.clean_optional(m.author.external_id, "author.external_id"),
        display_name=validation.clean_optional(m.author.display_name, "author.display_name"),
        followers=m.author.followers,
        in_reply_to=validation.clean_optional(m.in_reply_to, "in_reply_to"),
        conversation_id=validation.clean_optional(m.conversation_id, "conversation_id"),
        url=validation.clean_optional(m.url, "url"),
        lang=validation.clean_optional(m.lang, "lang"),
        raw=msgspec.to_builtins(m),
    )


def ingestor(db: Database) -> GroupCommit[Mention, Outcome]:
    """Group commit for single mentions: concurrent requests share one write transaction per brand."""
    return db.group_commit("mentions.ingest", lambda brand_id, mentions: ingest(db, brand_id, mentions))


async def ingest(db: Database, brand_id: int, mentions: Sequence[Mention]) -> list[Outcome]:
    """Store valid mentions; answers one outcome per mention, in order. Retried once on a unique-key race
    with a concurrent writer (PostgreSQL), after which every mention is either new or a duplicate."""
    for attempt in (1, 2):
        try:
            return await db.run_write(_ingest, brand_id, mentions)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ingest(conn: Connection, brand_id: int, mentions: Sequence[Mention]) -> list[Outcome]:
    """The whole ingest as plain Core statements on one connection (``Database.run_write``)."""
    now = utcnow()
    known = _known(conn, brand_id, [m.key for m in mentions])
    fresh: list[int] = []  # indexes of mentions to store, first occurrence of each key only
    first_index: dict[tuple[str, str], int] = {}
    for i, m in enumerate(mentions):
        if m.key not in known and m.key not in first_index:
            first_index[m.key] = i
            fresh.append(i)
    if not fresh:
        return [_duplicate(known[m.key]) for m in mentions]

    quiet: set[int] = set()
    people = resolve_people(conn, brand_id, (
        Sighting(mentions[i].platform, mentions[i].handle, mentions[i].created_at, mentions[i].author_external_id,
                 mentions[i].display_name, mentions[i].followers) for i in fresh), quiet)
    person_ids = sorted(set(people.values()))
    conversations = _conversations(conn, brand_id, [mentions[i] for i in fresh])
    open_turns = _open_turns(conn, person_ids)

    new_turns: list[dict[str, Any]] = []
    joined: dict[int, dict[str, Any]] = {}
    placement: dict[int, dict[str, Any]] = {}
    activity: dict = {}
    for n, i in enumerate(fresh):
        m = mentions[i]
        person_id = people[(m.platform, m.handle)]
        conversation = conversations[n]
        tally(activity, person_id, m.created_at, True, m.display_name, m.followers)
        if person_id in quiet:
            turn = _new_turn(brand_id, person_id, m, conversation, "skipped", now)
            new_turns.append(turn)
            placement[i] = turn
            continue
        existing = _matching_turn(open_turns.get(person_id, []), m.platform, conversation)
        if existing is None:
            turn = _new_turn(brand_id, person_id, m, conversation, "drafting", now)
            new_turns.append(turn)
            open_turns.setdefault(person_id, []).append(turn)
            placement[i] = turn
        else:
            # a stored turn's waiting_since is lowered in SQL, to the earliest of this batch's mentions
            existing["waiting_since"] = min(existing["waiting_since"], m.created_at) \
                if existing["waiting_since"] is not None else m.created_at
            if "current_draft_id" in existing:  # a stored turn, not one this batch opens
                joined[existing["id"]] = existing
            placement[i] = existing

    if new_turns:
        insert_returning_ids_sync(conn, _TURNS, new_turns)  # sets each turn's "id"
    _join(conn, joined, now)
    apply_activity(conn, activity)

    rows = []
    for n, i in enumerate(fresh):
        m = mentions[i]
        rows.append({"brand_id": brand_id, "person_id": people[(m.platform, m.handle)], "direction": "inbound",
                     "platform": m.platform, "external_id": m.external_id, "text": m.text,
                     "occurred_at": m.created_at, "received_at": now, "in_reply_to": m.in_reply_to,
                     "conversation_key": conversations[n], "url": m.url, "lang": m.lang,
                     "followers": m.followers, "turn_id": placement[i]["id"], "raw": m.raw})
    interaction_ids = insert_returning_ids_sync(conn, _INTERACTIONS, rows)

    opened = [t["id"] for t in new_turns if t["status"] == "drafting"]
    queue.enqueue_on(conn, queue.DRAFT_TURN, opened, brand_id=brand_id, skip_if_queued=False)  # none queued yet
    queue.enqueue_on(conn, queue.DRAFT_TURN, list(joined), brand_id=brand_id)

    status_of = {t["id"]: t["status"] for t in new_turns} | {tid: "drafting" for tid in joined}
    for i, interaction_id, row in zip(fresh, interaction_ids, rows):
        known[mentions[i].key] = Outcome(interaction_id, row["person_id"], row["turn_id"],
                                         status_of[row["turn_id"]], duplicate=False)
    return [known[m.key] if first_index.get(m.key) == i else _duplicate(known[m.key])
            for i, m in enumerate(mentions)]


_TURNS = Turn.__table__
_INTERACTIONS = Interaction.__table__


def _duplicate(outcome: Outcome) -> Outcome:
    return Outcome(outcome.id, outcome.person_id, outcome.turn_id, outcome.status, duplicate=True)


def _new_turn(brand_id: int, person_id: int, m: Mention, conversation: str | None, status: str,
              now: dt.datetime) -> dict[str, Any]:
    return {"brand_id": brand_id, "person_id": person_id, "platform": m.platform, "conversation_key": conversation,
            "status": status, "waiting_since": m.created_at, "version": 0, "created_at": now, "updated_at": now}


def _matching_turn(candidates: list[dict[str, Any]], platform: str, conversation: str | None) -> dict[str, Any] | None:
    """SPEC 3: the open turn with the same conversation; with no conversation, the person's newest open turn."""
    for turn in reversed(candidates):
        if turn["platform"] == platform and (conversation is None or turn["conversation_key"] == conversation):
            return turn
    return None


_KNOWN = (select(Interaction.platform, Interaction.external_id, Interaction.id, Interaction.person_id,
                 Interaction.turn_id, Turn.status)
          .outerjoin(Turn, Turn.id == Interaction.turn_id)
          .where(Interaction.brand_id == bindparam("brand_id"),
                 platform_keys(Interaction.platform, Interaction.external_id)))


def _known(conn: Connection, brand_id: int, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Outcome]:
    return {(p, external_id): Outcome(iid, pid, tid, status or "history", duplicate=True)
            for p, external_id, iid, pid, tid, status
            in rows_by_platform_keys(conn, _KNOWN, keys, brand_id=brand_id)}


_PARENTS = (select(Interaction.platform, Interaction.external_id, Interaction.conversation_key)
            .where(Interaction.brand_id == bindparam("brand_id"),
                   platform_keys(Interaction.platform, Interaction.external_id)))


def _conversations(conn: Connection, brand_id: int, mentions: list[Mention]) -> list[str | None]:
    """The conversation of each mention: its own id, else that of the message it replies to (SPEC 3)."""
    lookups = [(m.platform, m.in_reply_to) for m in mentions if not m.conversation_id and m.in_reply_to]
    parents: dict[tuple[str, str], str | None] = {
        (p, e): c for p, e, c in rows_by_platform_keys(conn, _PARENTS, lookups, brand_id=brand_id)}
    in_batch = {m.key: m for m in mentions} if lookups else {}
    result: list[str | None] = []
    for m in mentions:
        if m.conversation_id:
            conversation: str | None = m.conversation_id
        elif m.in_reply_to:
            parent_key = (m.platform, m.in_reply_to)
            conversation = parents.get(parent_key)
            if conversation is None and parent_key in in_batch:
                conversation = in_batch[parent_key].conversation_id
        else:
            conversation = None
        result.append(conversation)
    return result


_OPEN_TURNS = (select(Turn.id, Turn.person_id, Turn.platform, Turn.conversation_key, Turn.current_draft_id)
               .where(Turn.person_id.in_(bindparam("people", expanding=True)), Turn.status.in_(OPEN_TURN_STATES))
               .order_by(Turn.created_at, Turn.id))


def _open_turns(conn: Connection, person_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The people's open turns, oldest first. ``waiting_since`` is not read: joining lowers it in SQL."""
    found: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(person_ids), CHUNK):
        for tid, pid, platform, conversation_key, draft_id in conn.execute(
                _OPEN_TURNS, {"people": person_ids[start:start + CHUNK]}):
            found.setdefault(pid, []).append({"id": tid, "platform": platform, "conversation_key": conversation_key,
                                              "current_draft_id": draft_id, "waiting_since": None})
    return found


_SINCE = bindparam("since", type_=_TURNS.c.waiting_since.type)
_JOIN = (update(_TURNS).where(_TURNS.c.id == bindparam("turn_id"))
         .values(status="drafting", version=_TURNS.c.version + 1, updated_at=bindparam("now"),
                 waiting_since=case((_TURNS.c.waiting_since > _SINCE, _SINCE), else_=_TURNS.c.waiting_since)))


def _join(conn: Connection, joined: dict[int, dict[str, Any]], now: dt.datetime) -> None:
    """A turn that gained a mention goes back to drafting; the draft written before it is stale."""
    if not joined:
        return
    stale = [t["current_draft_id"] for t in joined.values() if t["current_draft_id"]]
    if stale:
        conn.execute(update(Draft).where(Draft.id.in_(stale)).values(stale=True))
    executemany(conn, _JOIN, [{"turn_id": tid, "now": now, "since": t["waiting_since"]} for tid, t in joined.items()])


def _get_mention(conn: Connection, brand_id: int, mention_id: int) -> MentionOut:
    row = conn.execute(
        select(Interaction.id, Interaction.person_id, Interaction.platform, Interaction.external_id,
               Interaction.text, Interaction.occurred_at, Interaction.turn_id, Interaction.in_reply_to,
               Interaction.conversation_key, Interaction.url, Turn.status)
        .outerjoin(Turn, Turn.id == Interaction.turn_id)
        .where(Interaction.id == mention_id, Interaction.brand_id == brand_id,
               Interaction.direction == "inbound")).first()
    if row is None:
        raise NotFound(f"no mention {mention_id}")
    return MentionOut(id=row.id, person_id=row.person_id, platform=row.platform, external_id=row.external_id,
                      text=row.text, created_at=row.occurred_at,
                      turn=TurnRef(row.turn_id, row.status) if row.turn_id else None,
                      in_reply_to=row.in_reply_to, conversation_id=row.conversation_key, url=row.url)


async def get_mention(db: Database, brand_id: int, mention_id: int) -> MentionOut:
    return await db.run_read(_get_mention, brand_id, mention_id)


__all__ = ["Mention", "Outcome", "get_mention", "ingest", "ingestor", "validate"]
