"""Promises our replies made: recorded at approval, listed per person and per brand, settled by a reviewer
(kept or dropped, with a reason), by the person writing again, or by the follow-up reply; and, when one falls
due, a follow-up turn that opens for the person by itself.

Every rule is a plain function of a ``Connection`` in the caller's transaction; the async functions at the
bottom are the service edge (one transaction each). Opening the follow-up is a conditional update of the
promise (``open`` → ``due``): of several workers sweeping at once, exactly one wins each promise and opens
(or joins) the person's turn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, exists, func, or_, select, update

from assistant.audit import record
from assistant.auth.principal import SYSTEM, Principal
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.memory import PROMISE_STATES, Promise
from assistant.db.outbox import Reply
from assistant.db.people import Interaction, Person
from assistant.errors import Conflict, Forbidden, NotFound, ValidationFailed
from assistant import turns
from assistant.jobs import queue
from assistant.validation import clean_text
from assistant.pagination import AfterTime, Page, decode_cursor, encode_cursor
from assistant.promises.detection import FoundPromise
from assistant.promises.schemas import PromiseOut
from assistant.webhooks.events import emit

_PROMISES = Promise.__table__
SETTLED = ("kept", "dropped")
SWEEP_BATCH = 200


def promise_out(row: object) -> PromiseOut:
    r = row._mapping  # type: ignore[attr-defined]
    return PromiseOut(id=r["id"], person_id=r["person_id"], kind=r["kind"], text=r["text"], reply_id=r["reply_id"],
                      turn_id=r["turn_id"], source=r["source"], due_at=r["due_at"], status=r["status"],
                      created_at=r["created_at"], followup_turn_id=r["followup_turn_id"],
                      settled_at=r["settled_at"], reason=r["reason"])


# Recording ------------------------------------------------------------------------------------------------

def record_promises(conn: Connection, *, brand_id: int, person_id: int, turn_id: int, reply_id: int,
                    found: Sequence[FoundPromise], at: dt.datetime) -> list[int]:
    """Store what the approved reply promised; a kind the reply already has stored is not stored twice (the
    model's reading adds only what the patterns missed)."""
    have = set(conn.execute(select(Promise.kind).where(Promise.reply_id == reply_id)).scalars())
    ids = []
    for promise in found:
        if promise.kind in have:
            continue
        have.add(promise.kind)
        ids.append(conn.execute(_PROMISES.insert().values(
            brand_id=brand_id, person_id=person_id, turn_id=turn_id, reply_id=reply_id, kind=promise.kind,
            text=promise.words, source=promise.source, due_at=at + promise.due_after, status="open",
            created_at=at)).inserted_primary_key[0])
    return ids


def keep_followed_up(conn: Connection, *, brand_id: int, turn_id: int, reply_id: int, user_id: int) -> int:
    """The approved reply of a follow-up turn keeps the promises that opened (or joined) that turn."""
    due = conn.execute(select(Promise.id, Promise.person_id).where(
        Promise.followup_turn_id == turn_id, Promise.status.in_(("open", "due")))).all()
    for promise_id, person_id in due:
        _settle(conn, brand_id, promise_id, person_id, "kept", f"followed up in reply {reply_id}",
                user_id=user_id, actor=None)
    return len(due)


# Reading --------------------------------------------------------------------------------------------------

def person_promises(conn: Connection, brand_id: int, person_id: int, *, checked: bool = False) -> list[PromiseOut]:
    """All of a person's promises, the open and due ones first, each group by due time. ``checked``: the
    caller already made sure the person is the brand's."""
    if not checked and conn.scalar(select(Person.id).where(Person.id == person_id, Person.brand_id == brand_id)) is None:
        raise NotFound(f"no person {person_id}")
    rows = conn.execute(select(_PROMISES).where(Promise.person_id == person_id, Promise.brand_id == brand_id)
                        .order_by(Promise.status.in_(SETTLED), Promise.due_at, Promise.id)).all()
    return [promise_out(row) for row in rows]


def unsettled_promises(conn: Connection, brand_id: int, person_ids: Sequence[int]) -> dict[int, list[PromiseOut]]:
    """The open and due promises of these people, by person, soonest due first: for the queue's "promise due"
    badge and the person's card. People with none are absent."""
    out: dict[int, list[PromiseOut]] = {}
    if not person_ids:
        return out
    rows = conn.execute(select(_PROMISES).where(
        Promise.brand_id == brand_id, Promise.person_id.in_(list(person_ids)),
        Promise.status.in_(("open", "due"))).order_by(Promise.due_at, Promise.id)).all()
    for row in rows:
        out.setdefault(row.person_id, []).append(promise_out(row))
    return out


def brand_promises(conn: Connection, brand_id: int, *, status: str, limit: int, cursor: str | None) -> Page[PromiseOut]:
    """The brand's promises in one status, oldest due first, in keyset pages."""
    if status not in PROMISE_STATES:
        raise ValidationFailed.field("status", f"use one of {', '.join(PROMISE_STATES)}")
    query = select(_PROMISES).where(Promise.brand_id == brand_id, Promise.status == status)
    after = decode_cursor(cursor, AfterTime)
    if after is not None:
        query = query.where(or_(Promise.due_at > after.at, and_(Promise.due_at == after.at, Promise.id > after.id)))
    rows = conn.execute(query.order_by(Promise.due_at, Promise.id).limit(limit + 1)).all()
    items = [promise_out(row) for row in rows[:limit]]
    next_cursor = encode_cursor(AfterTime(items[-1].due_at, items[-1].id)) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)


@dataclass(frozen=True)
class FollowUp:
    """What a follow-up turn follows up: the promises and the reply that made the first of them."""

    promises: list[PromiseOut]
    reply_text: str
    promised_at: dt.datetime


def followup_of_turn(conn: Connection, turn_id: int) -> FollowUp | None:
    """The promises that opened or joined this turn, with the reply that made the earliest; None if none."""
    rows = conn.execute(select(_PROMISES).where(Promise.followup_turn_id == turn_id)
                        .order_by(Promise.created_at, Promise.id)).all()
    if not rows:
        return None
    promises = [promise_out(row) for row in rows]
    reply_text = conn.scalar(select(Reply.text).where(Reply.id == promises[0].reply_id)) or ""
    return FollowUp(promises, reply_text, promises[0].created_at)


# Settling -------------------------------------------------------------------------------------------------

def settle(conn: Connection, actor: Principal, promise_id: int, outcome: str, reason: str | None) -> PromiseOut:
    """A reviewer marks a promise kept or dropped. Dropping needs a reason; a settled promise is 409."""
    if not actor.is_user:
        raise Forbidden("Only a reviewer or admin may settle a promise; API keys cannot")
    if outcome not in SETTLED:
        raise ValidationFailed.field("outcome", "use kept or dropped")
    reason = clean_text(reason, "reason") if reason is not None and reason.strip() else None
    if outcome == "dropped" and reason is None:
        raise ValidationFailed.field("reason", "say why the promise is dropped")
    row = conn.execute(select(_PROMISES).where(Promise.id == promise_id, Promise.brand_id == actor.brand_id)
                       .with_for_update()).first()
    if row is None:
        raise NotFound(f"no promise {promise_id}")
    if row.status in SETTLED:
        raise Conflict(f"promise {promise_id} is already {row.status}")
    if not _settle(conn, actor.brand_id, promise_id, row.person_id, outcome, reason, user_id=actor.id, actor=actor):
        raise Conflict(f"promise {promise_id} was settled by someone else just now")
    return promise_out(conn.execute(select(_PROMISES).where(Promise.id == promise_id)).one())


def _settle(conn: Connection, brand_id: int, promise_id: int, person_id: int, outcome: str, reason: str | None, *,
            user_id: int | None, actor: Principal | None) -> bool:
    now = utcnow()
    moved = conn.execute(update(_PROMISES).where(Promise.id == promise_id, Promise.status.in_(("open", "due")))
                         .values(status=outcome, reason=reason, settled_at=now, settled_by_user_id=user_id))
    if moved.rowcount != 1:
        return False
    record(conn, actor or SYSTEM, f"promise.{outcome}", "promise", promise_id, brand_id=brand_id,
              person_id=person_id, reason=reason)
    emit(conn, brand_id, "promise.settled", [{"promise_id": promise_id, "person_id": person_id,
                                                 "outcome": outcome, "reason": reason}])
    return True


def keep_when_they_wrote_again(conn: Connection, now: dt.datetime) -> int:
    """A person who wrote to us after we promised has their turn (and its draft knows the promise): their
    open promises count as kept, with that reason. Imported history (written before, received after) does not
    count."""
    wrote = exists().where(Interaction.person_id == Promise.person_id, Interaction.direction == "inbound",
                           Interaction.received_at > Promise.created_at, Interaction.occurred_at > Promise.created_at)
    rows = conn.execute(select(Promise.id, Promise.brand_id, Promise.person_id).where(
        Promise.status == "open", wrote).limit(SWEEP_BATCH)).all()
    for promise_id, brand_id, person_id in rows:
        _settle(conn, brand_id, promise_id, person_id, "kept", "they wrote again; their new turn carries it",
                user_id=None, actor=None)
    return len(rows)


# Falling due ----------------------------------------------------------------------------------------------

def open_due_followups(conn: Connection, now: dt.datetime) -> list[int]:
    """Promises whose time came: each moves ``open`` → ``due`` (one worker wins it) and gets a follow-up turn,
    the person's open turn if they have one, else a new turn drafted in the normal queue, waiting since the
    promise fell due. A person who asked not to be replied to gets no turn: the promise is dropped. Answers
    the follow-up turns' ids."""
    query = select(_PROMISES).where(Promise.status == "open", Promise.due_at <= now).order_by(
        Promise.due_at, Promise.id).limit(SWEEP_BATCH)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    opened = []
    for promise in conn.execute(query).all():
        person = conn.execute(select(Person.do_not_reply, Person.merged_into_id).where(
            Person.id == promise.person_id)).one()
        if person.do_not_reply:
            _settle(conn, promise.brand_id, promise.id, promise.person_id, "dropped",
                    "the person asked not to be replied to", user_id=None, actor=None)
            continue
        turn_id = _followup_turn(conn, promise, now)
        moved = conn.execute(update(_PROMISES).where(Promise.id == promise.id, Promise.status == "open")
                             .values(status="due", followup_turn_id=turn_id))
        if moved.rowcount != 1:
            continue
        record(conn, SYSTEM, "promise.due", "promise", promise.id, brand_id=promise.brand_id,
                  person_id=promise.person_id, turn_id=turn_id)
        emit(conn, promise.brand_id, "promise.due", [{
            "promise_id": promise.id, "person_id": promise.person_id, "kind": promise.kind,
            "text": promise.text, "due_at": promise.due_at.isoformat(), "turn_id": turn_id}])
        opened.append(turn_id)
    return opened


def _followup_turn(conn: Connection, promise: object, now: dt.datetime) -> int:
    """The turn that carries a due promise: opened (and given a draft job) by ``turns`` when the person has none."""
    p = promise._mapping  # type: ignore[attr-defined]
    turn_id, new = turns.open_follow_up(conn, p["brand_id"], p["person_id"], like_turn_id=p["turn_id"],
                                        waiting_since=p["due_at"], now=now)
    if new:
        queue.enqueue(conn, queue.DRAFT_TURN, [turn_id], brand_id=p["brand_id"])
    return turn_id


def sweep(conn: Connection, now: dt.datetime) -> list[int]:
    """One pass of the worker's sweep: settle what the person's new messages settled, then open what fell due."""
    keep_when_they_wrote_again(conn, now)
    return open_due_followups(conn, now)


def due_count(conn: Connection, brand_id: int) -> int:
    return conn.scalar(select(func.count()).select_from(_PROMISES).where(
        Promise.brand_id == brand_id, Promise.status == "due")) or 0


# The service edge -----------------------------------------------------------------------------------------

async def list_person_promises(db: Database, brand_id: int, person_id: int) -> list[PromiseOut]:
    return await db.run_read(person_promises, brand_id, person_id)


async def list_brand_promises(db: Database, brand_id: int, *, status: str, limit: int,
                              cursor: str | None) -> Page[PromiseOut]:
    return await db.run_read(lambda conn: brand_promises(conn, brand_id, status=status, limit=limit, cursor=cursor))


async def settle_promise(db: Database, actor: Principal, promise_id: int, outcome: str,
                         reason: str | None) -> PromiseOut:
    return await db.run_write(settle, actor, promise_id, outcome, reason)


async def open_promises(db: Database, brand_id: int, person_ids: Sequence[int]) -> dict[int, list[PromiseOut]]:
    """For other pages (the queue's badge): the open and due promises of these people."""
    return await db.run_read(unsettled_promises, brand_id, list(person_ids))


async def run_sweep(db: Database) -> list[int]:
    return await db.run_write(sweep, utcnow())


__all__ = ["FollowUp", "brand_promises", "followup_of_turn", "keep_followed_up", "list_brand_promises",
           "list_person_promises", "open_due_followups", "open_promises", "person_promises", "record_promises",
           "run_sweep", "settle", "settle_promise", "sweep", "unsettled_promises"]
