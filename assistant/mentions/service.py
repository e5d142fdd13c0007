"""Ingest: a mention is stored, tied to its person, and placed in a turn, all in one transaction.

Everything works a batch at a time (a single mention is a batch of one), so a thousand mentions cost a
handful of statements, not thousands. The natural key (brand, platform, external_id) makes every retry safe:
a mention seen before answers with the ids it got the first time.

On PostgreSQL a large batch is stored in ``PARTS`` transactions side by side, each on its own connection, so
the database's work on one part runs on the other core while this process builds the next part's rows (one
transaction after another, each waited for the other: a 1,000-mention batch took the server's time plus the
database's). Everything one person's mentions touch (their handles, person row, open turns) is in one part,
and so is a reply with the mention it answers and every copy of one mention, so the parts never touch the
same rows. A batch answered with an error may have stored some parts: sent again, those answer as
duplicates with the ids they got, the rest are stored. SQLite writes one transaction at a time, so there a
batch stays one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError

from assistant import turns, validation
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.group_commit import GroupCommit
from assistant.db.lookup import platform_keys, rows_by_platform_keys
from assistant.db.people import Interaction
from assistant.db.turns import Turn
from assistant.errors import NotFound
from assistant.jobs import queue
from assistant.mentions.schemas import MentionIn, MentionOut, TurnRef
from assistant.people import history
from assistant.people.identity import HandleKey, Sighting, apply_activity, known_people, resolve_people, tally
from assistant.problems import validation_failed

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


PARTS = 3
"""Transactions side by side for one large batch on PostgreSQL. 1,000-mention batches from one client, 2
cores: 4,700/s in one transaction, 6,900/s in two, 7,800/s in three, 7,700/s in four."""
PARTS_FROM = 200
"""Smaller batches (and group commits of single mentions, a few dozen at 32 connections) stay one transaction: a
part's fixed cost (a connection, BEGIN, a dozen round trips) is worth paying only for many rows."""


async def ingest(db: Database, brand_id: int, mentions: Sequence[Mention]) -> list[Outcome]:
    """Store valid mentions; answers one outcome per mention, in order (see the module's docstring for large
    batches on PostgreSQL)."""
    if db.is_sqlite or len(mentions) < PARTS_FROM:
        return await _ingest_together(db, brand_id, mentions)
    handles = sorted({(m.platform, m.handle) for m in mentions})
    people = await db.run_read(known_people, brand_id, handles)
    parts = split_apart(mentions, people, PARTS)
    stored = await asyncio.gather(*(_ingest_together(db, brand_id, [mentions[i] for i in part]) for part in parts),
                                  return_exceptions=True)  # every part ends before an error is raised
    outcome_of: dict[int, Outcome] = {}
    for part, part_outcomes in zip(parts, stored):
        if isinstance(part_outcomes, BaseException):
            raise part_outcomes
        outcome_of.update(zip(part, part_outcomes))
    return [outcome_of[i] for i in range(len(mentions))]


def split_apart(mentions: Sequence[Mention], people: dict[HandleKey, int], parts: int) -> list[list[int]]:
    """The mentions' indexes in at most ``parts`` lists that touch no row in common: mentions are kept
    together when they share a handle, a known person (``people``: one person may have several handles), a
    key (copies of one mention) or a reply's parent. Each list is in the batch's order."""
    leader: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def find(node: tuple[Any, ...]) -> tuple[Any, ...]:
        root = node
        while leader.setdefault(root, root) != root:
            root = leader[root]
        while node != root:  # later finds go straight to the root
            leader[node], node = root, leader[node]
        return root

    def join(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        leader[find(b)] = find(a)

    for m in mentions:
        handle = ("handle", m.platform, m.handle)
        person = people.get((m.platform, m.handle))
        if person is not None:
            join(("person", person), handle)
        join(handle, ("mention", m.platform, m.external_id))
        if m.in_reply_to:
            join(handle, ("mention", m.platform, m.in_reply_to))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, m in enumerate(mentions):
        groups.setdefault(find(("handle", m.platform, m.handle)), []).append(i)
    lists: list[list[int]] = [[] for _ in range(parts)]
    for group in sorted(groups.values(), key=len, reverse=True):  # largest first, each to the shortest list
        min(lists, key=len).extend(group)
    return [sorted(found) for found in lists if found]


async def _ingest_together(db: Database, brand_id: int, mentions: Sequence[Mention]) -> list[Outcome]:
    """The mentions in one transaction. Retried once on a unique-key race with a concurrent writer
    (PostgreSQL), after which every mention is either new or a duplicate."""
    for attempt in (1, 2):
        try:
            return await db.run_write(store_mentions, brand_id, mentions)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def store_mentions(conn: Connection, brand_id: int, mentions: Sequence[Mention]) -> list[Outcome]:
    """The whole ingest as plain Core statements in the caller's transaction: ``ingest``'s own, or the one
    the eval seeds a case in."""
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
    conversations = _conversations(conn, brand_id, [mentions[i] for i in fresh])
    person_of = [people[(mentions[i].platform, mentions[i].handle)] for i in fresh]
    # The people first: their rows are locked by the counters' update, so a concurrent transaction with mentions of
    # the same person (another process, PostgreSQL) waits here, then finds the turn this one opens and joins it.
    # Placed first, both found no open turn and each opened one (39 of 40 tries with two processes).
    activity: dict = {}
    for i, person_id in zip(fresh, person_of):
        m = mentions[i]
        tally(activity, person_id, m.created_at, True, m.display_name, m.followers)
    apply_activity(conn, activity)
    placed = turns.place(conn, brand_id, [
        turns.Arrival(person_id, mentions[i].platform, conversation, mentions[i].created_at)
        for i, person_id, conversation in zip(fresh, person_of, conversations)], quiet, now)

    rows = []
    for n, i in enumerate(fresh):
        m = mentions[i]
        rows.append({"brand_id": brand_id, "person_id": person_of[n], "direction": "inbound",
                     "platform": m.platform, "external_id": m.external_id, "text": m.text,
                     "occurred_at": m.created_at, "received_at": now, "in_reply_to": m.in_reply_to,
                     "conversation_key": conversations[n], "url": m.url, "lang": m.lang,
                     "followers": m.followers, "turn_id": placed.turn_ids[n], "raw": m.raw})
    interaction_ids = history.add_mentions(conn, rows)

    queue.enqueue(conn, queue.DRAFT_TURN, placed.opened, brand_id=brand_id, skip_if_queued=False)  # none queued yet
    queue.enqueue(conn, queue.DRAFT_TURN, placed.joined, brand_id=brand_id)

    for i, interaction_id, row in zip(fresh, interaction_ids, rows):
        known[mentions[i].key] = Outcome(interaction_id, row["person_id"], row["turn_id"],
                                         placed.status[row["turn_id"]], duplicate=False)
    return [known[m.key] if first_index.get(m.key) == i else _duplicate(known[m.key])
            for i, m in enumerate(mentions)]


def _duplicate(outcome: Outcome) -> Outcome:
    return Outcome(outcome.id, outcome.person_id, outcome.turn_id, outcome.status, duplicate=True)


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


__all__ = ["Mention", "Outcome", "get_mention", "ingest", "ingestor", "split_apart", "store_mentions", "validate"]
