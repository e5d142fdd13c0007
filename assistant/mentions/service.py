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
from sqlalchemy import select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.people import Interaction, Person
from assistant.db.turns import OPEN_TURN_STATES, Draft, Turn
from assistant.errors import NotFound, ValidationFailed
from assistant.jobs import queue
from assistant.mentions import validation
from assistant.mentions.schemas import MentionIn, MentionOut, TurnRef
from assistant.people.identity import Sighting, apply_activity, insert_returning_ids, resolve_people, tally
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
        external_id=_ident(m.external_id, "external_id"),
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


def _ident(value: str, field: str) -> str:
    cleaned = validation.clean_optional(value, field)
    if not cleaned:
        raise ValidationFailed.field(field, "must not be empty")
    return cleaned


async def ingest(db: Database, brand_id: int, mentions: Sequence[Mention]) -> list[Outcome]:
    """Store valid mentions; answers one outcome per mention, in order. Retried once on a unique-key race
    with a concurrent writer (PostgreSQL), after which every mention is either new or a duplicate."""
    for attempt in (1, 2):
        try:
            async with db.write() as session:
                outcomes = await _ingest(session, brand_id, mentions)
            return outcomes
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _ingest(session: AsyncSession, brand_id: int, mentions: Sequence[Mention]) -> list[Outcome]:
    now = utcnow()
    known = await _known(session, brand_id, [m.key for m in mentions])
    fresh: list[int] = []  # indexes of mentions to store, first occurrence of each key only
    first_index: dict[tuple[str, str], int] = {}
    for i, m in enumerate(mentions):
        if m.key not in known and m.key not in first_index:
            first_index[m.key] = i
            fresh.append(i)
    if not fresh:
        return [_duplicate(known[m.key]) for m in mentions]

    people = await resolve_people(session, brand_id, (
        Sighting(mentions[i].platform, mentions[i].handle, mentions[i].created_at, mentions[i].author_external_id,
                 mentions[i].display_name, mentions[i].followers) for i in fresh))
    person_ids = sorted(set(people.values()))
    quiet = set((await session.execute(select(Person.id).where(
        Person.id.in_(person_ids), Person.do_not_reply.is_(True)))).scalars())
    conversations = await _conversations(session, brand_id, [mentions[i] for i in fresh])
    open_turns = await _open_turns(session, person_ids)

    new_turns: list[dict[str, Any]] = []
    joined: dict[int, Turn] = {}
    placement: dict[int, tuple[str, int | dict[str, Any]]] = {}
    activity: dict = {}
    for i in fresh:
        m = mentions[i]
        person_id = people[(m.platform, m.handle)]
        conversation = conversations.get(i)
        tally(activity, person_id, m.created_at, True, m.display_name, m.followers)
        if person_id in quiet:
            turn: dict[str, Any] = _new_turn(brand_id, person_id, m, conversation, "skipped", now)
            new_turns.append(turn)
            placement[i] = ("new", turn)
            continue
        existing = _matching_turn(open_turns.get(person_id, []), m.platform, conversation)
        if existing is None:
            turn = _new_turn(brand_id, person_id, m, conversation, "drafting", now)
            new_turns.append(turn)
            open_turns.setdefault(person_id, []).append(turn)
            placement[i] = ("new", turn)
        elif isinstance(existing, dict):
            existing["waiting_since"] = min(existing["waiting_since"], m.created_at)
            placement[i] = ("new", existing)
        else:
            existing.waiting_since = min(existing.waiting_since, m.created_at)
            joined[existing.id] = existing
            placement[i] = ("joined", existing.id)

    if new_turns:
        ids = await insert_returning_ids(session, Turn.__table__, new_turns)
        for turn, turn_id in zip(new_turns, ids):
            turn["id"] = turn_id
    await _join(session, joined, now)
    await apply_activity(session, activity)

    rows = []
    for i in fresh:
        m = mentions[i]
        how, ref = placement[i]
        turn_id = ref["id"] if how == "new" else ref  # type: ignore[index]
        rows.append({"brand_id": brand_id, "person_id": people[(m.platform, m.handle)], "direction": "inbound",
                     "platform": m.platform, "external_id": m.external_id, "text": m.text,
                     "occurred_at": m.created_at, "received_at": now, "in_reply_to": m.in_reply_to,
                     "conversation_key": conversations.get(i), "url": m.url, "lang": m.lang,
                     "followers": m.followers, "turn_id": turn_id, "raw": m.raw})
    interaction_ids = await insert_returning_ids(session, Interaction.__table__, rows)

    to_draft = [t["id"] for t in new_turns if t["status"] == "drafting"] + list(joined)
    await queue.enqueue(session, queue.DRAFT_TURN, to_draft, brand_id=brand_id)

    status_of = {t["id"]: t["status"] for t in new_turns} | {tid: "drafting" for tid in joined}
    for i, interaction_id, row in zip(fresh, interaction_ids, rows):
        known[mentions[i].key] = Outcome(interaction_id, row["person_id"], row["turn_id"],
                                         status_of[row["turn_id"]], duplicate=False)
    return [known[m.key] if first_index.get(m.key) == i else _duplicate(known[m.key])
            for i, m in enumerate(mentions)]


def _duplicate(outcome: Outcome) -> Outcome:
    return Outcome(outcome.id, outcome.person_id, outcome.turn_id, outcome.status, duplicate=True)


def _new_turn(brand_id: int, person_id: int, m: Mention, conversation: str | None, status: str,
              now: dt.datetime) -> dict[str, Any]:
    return {"brand_id": brand_id, "person_id": person_id, "platform": m.platform, "conversation_key": conversation,
            "status": status, "waiting_since": m.created_at, "version": 0, "created_at": now, "updated_at": now}


def _matching_turn(candidates: list[Turn | dict[str, Any]], platform: str,
                   conversation: str | None) -> Turn | dict[str, Any] | None:
    """SPEC 3: the open turn with the same conversation; with no conversation, the person's newest open turn."""
    def get(t: Turn | dict[str, Any], name: str) -> Any:
        return t[name] if isinstance(t, dict) else getattr(t, name)

    same_platform = [t for t in candidates if get(t, "platform") == platform]
    if conversation is not None:
        same_platform = [t for t in same_platform if get(t, "conversation_key") == conversation]
    return same_platform[-1] if same_platform else None


async def _known(session: AsyncSession, brand_id: int, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Outcome]:
    found: dict[tuple[str, str], Outcome] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), CHUNK):
        rows = await session.execute(
            select(Interaction.platform, Interaction.external_id, Interaction.id, Interaction.person_id,
                   Interaction.turn_id, Turn.status)
            .outerjoin(Turn, Turn.id == Interaction.turn_id)
            .where(Interaction.brand_id == brand_id,
                   tuple_(Interaction.platform, Interaction.external_id).in_(unique[start:start + CHUNK])))
        for platform, external_id, iid, pid, tid, status in rows:
            found[(platform, external_id)] = Outcome(iid, pid, tid, status or "history", duplicate=True)
    return found


async def _conversations(session: AsyncSession, brand_id: int, mentions: list[Mention]) -> dict[int, str | None]:
    """The conversation of each mention: its own id, else that of the message it replies to (SPEC 3)."""
    result: dict[int, str | None] = {}
    lookups = {(m.platform, m.in_reply_to) for m in mentions if not m.conversation_id and m.in_reply_to}
    parents: dict[tuple[str, str], str | None] = {}
    unique = list(lookups)
    for start in range(0, len(unique), CHUNK):
        rows = await session.execute(
            select(Interaction.platform, Interaction.external_id, Interaction.conversation_key)
            .where(Interaction.brand_id == brand_id,
                   tuple_(Interaction.platform, Interaction.external_id).in_(unique[start:start + CHUNK])))
        parents.update({(p, e): c for p, e, c in rows})
    in_batch = {m.key: m for m in mentions}
    for i, m in enumerate(mentions):
        if m.conversation_id:
            conversation: str | None = m.conversation_id
        elif m.in_reply_to:
            parent_key = (m.platform, m.in_reply_to)
            conversation = parents.get(parent_key)
            if conversation is None and parent_key in in_batch:
                conversation = in_batch[parent_key].conversation_id
        else:
            conversation = None
        result[i] = conversation
    return {i: result[i] for i in range(len(mentions))}


async def _open_turns(session: AsyncSession, person_ids: list[int]) -> dict[int, list[Turn | dict[str, Any]]]:
    found: dict[int, list[Turn | dict[str, Any]]] = {}
    for start in range(0, len(person_ids), CHUNK):
        turns = (await session.execute(
            select(Turn).where(Turn.person_id.in_(person_ids[start:start + CHUNK]),
                               Turn.status.in_(OPEN_TURN_STATES)).order_by(Turn.created_at, Turn.id))).scalars()
        for turn in turns:
            found.setdefault(turn.person_id, []).append(turn)
    return found


async def _join(session: AsyncSession, joined: dict[int, Turn], now: dt.datetime) -> None:
    """A turn that gained a mention goes back to drafting; the draft written before it is stale."""
    if not joined:
        return
    stale = [t.current_draft_id for t in joined.values() if t.current_draft_id]
    if stale:
        await session.execute(update(Draft).where(Draft.id.in_(stale)).values(stale=True),
                              execution_options={"synchronize_session": False})
    for turn in joined.values():
        turn.status = "drafting"
        turn.version += 1
        turn.updated_at = now
    await session.flush()


async def get_mention(db: Database, brand_id: int, mention_id: int) -> MentionOut:
    async with db.read() as session:
        row = (await session.execute(
            select(Interaction, Turn.status).outerjoin(Turn, Turn.id == Interaction.turn_id)
            .where(Interaction.id == mention_id, Interaction.brand_id == brand_id,
                   Interaction.direction == "inbound"))).first()
    if row is None:
        raise NotFound(f"no mention {mention_id}")
    i, status = row
    return MentionOut(id=i.id, person_id=i.person_id, platform=i.platform, external_id=i.external_id, text=i.text,
                      created_at=i.occurred_at, turn=TurnRef(i.turn_id, status) if i.turn_id else None,
                      in_reply_to=i.in_reply_to, conversation_id=i.conversation_key, url=i.url)


__all__ = ["Mention", "Outcome", "get_mention", "ingest", "validate"]
