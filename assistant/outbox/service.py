"""Outbox rules: approved replies are claimed under a lease, posted once, and the loop closes in the history.

``create_reply`` is how an approval reaches the outbox (called by the review service). A scheduling tool then
claims replies (exclusively: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the ``BEGIN IMMEDIATE`` write
transaction on SQLite), posts them, and confirms with the platform's post id. Confirming marks the reply
posted and, in the same transaction, asks ``turns`` to mark its turn posted, ``people`` to add it to the
person's history and counters, ``webhooks`` for the event and ``audit`` for the record: a reply is either
posted everywhere or nowhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from assistant import turns
from assistant.audit import record, record_many
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.base import UTCDateTime, utcnow
from assistant.db.bulk import executemany
from assistant.db.group_commit import GroupCommit
from assistant.db.locking import claimable, for_update
from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction
from assistant.errors import AssistantError, Conflict, NotFound, ValidationFailed
from assistant.outbox.schemas import ClaimedReply, ReplyOut
from assistant.pagination import AfterTime, Page, decode_cursor, encode_cursor
from assistant.people import history
from assistant.turns import TurnRow
from assistant.validation import clean_optional, clean_text, platform_token, timestamp
from assistant.webhooks.events import emit

POSTABLE = ("approved", "claimed")
"""A reply in these states may be confirmed or reported failed (a lapsed lease still counts as claimed)."""


_NEWEST_MENTION = (select(Interaction.external_id).where(Interaction.turn_id == bindparam("turn_id"))
                   .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(1))
_HANDLE = (select(Handle.handle).where(Handle.person_id == bindparam("person_id"),
                                       Handle.platform == bindparam("platform")).order_by(Handle.id).limit(1))
_EARLIER_REPLY = (select(Reply.external_post_id, Reply.in_reply_to)
                  .where(Reply.person_id == bindparam("person_id"), Reply.platform == bindparam("platform"),
                         Reply.turn_id != bindparam("turn_id"))
                  .order_by(Reply.approved_at.desc(), Reply.id.desc()).limit(1))
_FAILED_REPLY = select(Reply.id).where(Reply.turn_id == bindparam("turn_id"), Reply.status == "failed")


def create_reply(conn: Connection, turn: TurnRow, *, draft_id: int | None, decision_id: int | None, text: str,
                 user_id: int) -> int:
    """Put an approved text in the outbox; answers the reply's id. It answers the newest mention of its turn
    (SPEC 3); a turn with no mention (a follow-up we owe them, opened when a promise fell due) continues the
    thread of our latest reply to them on that platform."""
    in_reply_to = conn.execute(_NEWEST_MENTION, {"turn_id": turn.id}).scalar()
    if in_reply_to is None:
        earlier = conn.execute(_EARLIER_REPLY, {"person_id": turn.person_id, "platform": turn.platform,
                                                "turn_id": turn.id}).first()
        in_reply_to = (earlier.external_post_id or earlier.in_reply_to) if earlier is not None else ""
    handle = conn.scalar(_HANDLE, {"person_id": turn.person_id, "platform": turn.platform}) or ""
    now = utcnow()
    approval = {"draft_id": draft_id, "decision_id": decision_id, "text": text, "in_reply_to": in_reply_to,
                "author_handle": handle, "status": "approved", "approved_by_user_id": user_id,
                "approved_at": now, "lease_until": None, "claimed_by_key_id": None, "error": None}
    # A turn whose reply failed for good comes back to the reviewers; approving it again reuses its reply row.
    reply_id = conn.scalar(_FAILED_REPLY, {"turn_id": turn.id})
    if reply_id is None:
        reply_id = conn.execute(_REPLIES.insert(), {
            "brand_id": turn.brand_id, "turn_id": turn.id, "person_id": turn.person_id, "platform": turn.platform,
            "created_at": now, **approval}).inserted_primary_key[0]
    else:
        conn.execute(update(_REPLIES).where(_REPLIES.c.id == reply_id).values(**approval))
    emit(conn, turn.brand_id, "reply.approved", [{
        "reply_id": reply_id, "turn_id": turn.id, "platform": turn.platform, "in_reply_to": in_reply_to,
        "author_handle": handle, "text": text}])
    return int(reply_id)


async def list_replies(db: Database, brand_id: int, *, status: str, limit: int, cursor: str | None) -> Page[ReplyOut]:
    """Oldest approval first, the order the people started waiting in; keyset pages."""
    after = decode_cursor(cursor, AfterTime)
    query = select(_REPLIES).where(Reply.brand_id == brand_id, Reply.status == status)
    if after is not None:
        query = query.where(or_(Reply.approved_at > after.at, and_(Reply.approved_at == after.at,
                                                                    Reply.id > after.id)))
    replies = await db.run_read(_all, query.order_by(Reply.approved_at, Reply.id).limit(limit + 1))
    page = replies[:limit]
    next_cursor = encode_cursor(AfterTime(page[-1].approved_at, page[-1].id)) if len(replies) > limit else None
    return Page(items=[reply_out(r) for r in page], next_cursor=next_cursor)


async def claim(db: Database, actor: Principal, *, limit: int, lease_seconds: int,
                platform: str | None) -> list[ClaimedReply]:
    """Hand out up to ``limit`` approved replies, and claimed ones whose lease ended, to this caller alone."""
    token = platform_token(platform) if platform is not None else None
    return await db.run_write(_claim, actor.brand_id, actor.id, limit, lease_seconds, token)


_REPLIES = Reply.__table__
_CLAIM_COLUMNS = (_REPLIES.c.id, _REPLIES.c.platform, _REPLIES.c.text, _REPLIES.c.in_reply_to,
                  _REPLIES.c.author_handle, _REPLIES.c.approved_at)


def _claim(conn: Connection, brand_id: int, key_id: int | None, limit: int, lease_seconds: int,
           platform: str | None) -> list[ClaimedReply]:
    """Two index range scans of ``ix_replies_outbox`` (approved; claimed with a lapsed lease), merged in
    approval order. One ``OR`` of both made SQLite walk all the brand's replies and sort them: 1.8 ms
    against 0.02 ms at 10k approved replies."""
    now = utcnow()
    c = _REPLIES.c
    where = [c.brand_id == brand_id] if platform is None else [c.brand_id == brand_id, c.platform == platform]
    rows = []
    for ready in ((c.status == "claimed", c.lease_until <= now), (c.status == "approved",)):
        query = claimable(select(*_CLAIM_COLUMNS).where(*where, *ready).order_by(c.approved_at, c.id).limit(limit))
        rows.extend(conn.execute(query).all())
    rows.sort(key=lambda r: (r.approved_at, r.id))
    del rows[limit:]
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    if rows:
        conn.execute(update(_REPLIES).where(c.id.in_([r.id for r in rows])).values(
            status="claimed", lease_until=lease_until, claimed_by_key_id=key_id))
    return [ClaimedReply(id=r.id, platform=r.platform, text=r.text, in_reply_to=r.in_reply_to,
                         author_handle=r.author_handle, lease_until=lease_until) for r in rows]


@dataclass
class Posting:
    """One confirmation, validated: the tool posted ``reply_id`` as ``external_id``."""

    actor: Principal
    reply_id: int
    external_id: str
    url: str | None
    posted_at: dt.datetime


def posting(actor: Principal, reply_id: int, *, external_id: str, url: str | None,
            posted_at: dt.datetime | None) -> Posting:
    now = utcnow()
    return Posting(actor, reply_id, _required(external_id, "external_id"), clean_optional(url, "url"),
                   timestamp(posted_at, "posted_at", now=now) if posted_at is not None else now)


async def confirm_posted(db: Database, postings: Sequence[Posting]) -> list[ReplyOut | AssistantError]:
    """Confirm one brand's postings in one transaction, answering each alone: a reply posted again with the
    same post id is unchanged, with another id it is a conflict. Set-based, so a batch costs a handful of
    statements however large it is; plain statements on a ``Connection`` (no ORM objects)."""
    try:
        return await db.run_write(_confirm, postings)
    except IntegrityError:  # PostgreSQL: a concurrent transaction stored one of these post ids first
        if len(postings) == 1:
            return [Conflict(f"{postings[0].external_id!r} was confirmed for another message at the same time")]
    return [answer for p in postings for answer in await confirm_posted(db, [p])]


_POST = (update(_REPLIES).where(_REPLIES.c.id == bindparam("rid")).values(
    status="posted", external_post_id=bindparam("external_id"), url=bindparam("url"),
    posted_at=bindparam("posted_at", type_=UTCDateTime()), lease_until=None))


def _confirm(conn: Connection, postings: Sequence[Posting]) -> list[ReplyOut | AssistantError]:
    brand_id = postings[0].actor.brand_id
    # By primary key alone: with ``brand_id`` in the WHERE, SQLite picks ix_replies_outbox and walks all the
    # brand's replies (2.5 ms a batch at 10k rows). Another brand's reply is dropped here instead.
    query = for_update(select(_REPLIES).where(_REPLIES.c.id.in_({p.reply_id for p in postings}))
                       .order_by(_REPLIES.c.id))
    replies = {r.id: SimpleNamespace(**r._mapping) for r in conn.execute(query) if r.brand_id == brand_id}
    taken = set(history.conversations(conn, brand_id, {
        (replies[p.reply_id].platform, p.external_id) for p in postings if p.reply_id in replies}))
    answers: list[ReplyOut | AssistantError] = []
    fresh: list[tuple[Posting, Any]] = []
    for p in postings:
        reply = replies.get(p.reply_id)
        if reply is None:
            answers.append(NotFound(f"no reply {p.reply_id}"))
        elif reply.status == "posted":
            answers.append(reply_out(reply) if reply.external_post_id == p.external_id else Conflict(
                f"reply {reply.id} was already confirmed as post {reply.external_post_id!r}"))
        elif reply.status not in POSTABLE:
            answers.append(_not_postable(reply, "confirmed"))
        elif (reply.platform, p.external_id) in taken:
            answers.append(Conflict(f"{reply.platform} post {p.external_id!r} is already another message"))
        else:
            taken.add((reply.platform, p.external_id))
            # The row as it will be: a later posting of the same reply in this batch sees it posted.
            reply.status, reply.external_post_id, reply.url, reply.posted_at = "posted", p.external_id, p.url, p.posted_at
            reply.lease_until = None
            fresh.append((p, reply))
            answers.append(reply_out(reply))
    if fresh:
        _close_loop(conn, brand_id, fresh)
    return answers


def _close_loop(conn: Connection, brand_id: int, fresh: list[tuple[Posting, Any]]) -> None:
    """Posted: the replies, the turns, the people's history and counters, the subscribers and the audit log
    all learn it."""
    now = utcnow()
    executemany(conn, _POST, [{"rid": r.id, "external_id": p.external_id, "url": p.url, "posted_at": p.posted_at}
                              for p, r in fresh])
    turns.post(conn, [r.turn_id for _, r in fresh])
    history.add_replies(conn, brand_id, [
        {"person_id": r.person_id, "platform": r.platform, "external_id": p.external_id, "text": r.text,
         "occurred_at": p.posted_at, "in_reply_to": r.in_reply_to, "url": p.url, "turn_id": r.turn_id}
        for p, r in fresh], now)
    emit(conn, brand_id, "reply.posted", [
        {"reply_id": r.id, "turn_id": r.turn_id, "person_id": r.person_id, "platform": r.platform,
         "in_reply_to": r.in_reply_to, "external_id": p.external_id, "url": p.url,
         "posted_at": p.posted_at.isoformat()} for p, r in fresh])
    record_many(conn, [(p.actor, "reply.posted", "reply", r.id, {"turn_id": r.turn_id, "external_id": p.external_id})
                       for p, r in fresh], brand_id=brand_id)


def confirmer(db: Database) -> GroupCommit[Posting, ReplyOut]:
    """Group commit for confirmations: concurrent tools' confirmations share one transaction per brand."""
    return db.group_commit("outbox.confirm", lambda brand_id, postings: confirm_posted(db, postings))


async def report_failure(db: Database, actor: Principal, reply_id: int, *, error: str, retry: bool) -> ReplyOut:
    """Posting failed. With ``retry`` the reply waits in the outbox again; without, it fails for good and its
    turn goes back to the reviewers as ``failed``."""
    return await db.run_write(_report_failure, actor, reply_id, clean_text(error, "error").strip(), retry)


def _report_failure(conn: Connection, actor: Principal, reply_id: int, error: str, retry: bool) -> ReplyOut:
    found = conn.execute(for_update(select(_REPLIES).where(_REPLIES.c.id == reply_id))).first()
    if found is None or found.brand_id != actor.brand_id:  # by primary key alone, as in ``_confirm``
        raise NotFound(f"no reply {reply_id}")
    reply = SimpleNamespace(**found._mapping)
    if reply.status == "failed" and not retry:
        return reply_out(reply)
    if reply.status not in POSTABLE:
        raise _not_postable(reply, "reported failed")
    reply.status = "approved" if retry else "failed"
    reply.error, reply.failures, reply.lease_until, reply.claimed_by_key_id = error, reply.failures + 1, None, None
    conn.execute(update(_REPLIES).where(_REPLIES.c.id == reply.id).values(
        status=reply.status, error=error, failures=reply.failures, lease_until=None, claimed_by_key_id=None))
    if retry:
        record(conn, actor, "reply.retry", "reply", reply.id, error=error)
        return reply_out(reply)
    turns.fail(conn, reply.turn_id)
    emit(conn, reply.brand_id, "reply.failed", [{
        "reply_id": reply.id, "turn_id": reply.turn_id, "person_id": reply.person_id,
        "platform": reply.platform, "in_reply_to": reply.in_reply_to, "error": error}])
    record(conn, actor, "reply.failed", "reply", reply.id, turn_id=reply.turn_id, error=error)
    return reply_out(reply)


def _all(conn: Connection, query: Any) -> list[Any]:
    return list(conn.execute(query).all())


def _not_postable(reply: Any, action: str) -> Conflict:
    return Conflict(f"reply {reply.id} is {reply.status}; only an approved or claimed reply can be {action}")


def _required(value: str, field: str) -> str:
    cleaned = clean_optional(value, field)
    if cleaned is None:
        raise ValidationFailed.field(field, "must not be empty")
    return cleaned


def reply_out(reply: Any) -> ReplyOut:
    """A reply (a row, or the row as it will be) as the API shows it."""
    return ReplyOut(id=reply.id, status=reply.status, platform=reply.platform,  # type: ignore[arg-type]
                    text=reply.text, in_reply_to=reply.in_reply_to, author_handle=reply.author_handle,
                    turn_id=reply.turn_id, person_id=reply.person_id, approved_at=reply.approved_at,
                    lease_until=reply.lease_until, external_id=reply.external_post_id, url=reply.url,
                    posted_at=reply.posted_at, error=reply.error, failures=reply.failures)
