"""Outbox rules: approved replies are claimed under a lease, posted once, and the loop closes in the history.

``create_reply`` is how an approval reaches the outbox (called by the review service). A scheduling tool then
claims replies (exclusively: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the ``BEGIN IMMEDIATE`` write
transaction on SQLite), posts them, and confirms with the platform's post id. Confirming writes the reply,
its turn, the outbound interaction in the person's history, their counters, the webhook event and the audit
record in one transaction, so a reply is either posted everywhere or nowhere.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.audit import record
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction
from assistant.db.turns import Turn
from assistant.errors import Conflict, NotFound, ValidationFailed
from assistant.mentions.validation import clean_optional, clean_text, platform_token, timestamp
from assistant.outbox.schemas import ClaimedReply, ReplyOut
from assistant.pagination import Page, decode_cursor, encode_cursor
from assistant.people.identity import apply_activity, tally
from assistant.webhooks.events import emit

POSTABLE = ("approved", "claimed")
"""A reply in these states may be confirmed or reported failed (a lapsed lease still counts as claimed)."""


async def create_reply(session: AsyncSession, *, turn: Turn, draft_id: int | None, decision_id: int | None,
                       text: str, user_id: int) -> Reply:
    """Put an approved text in the outbox. It answers the newest mention of its turn (SPEC 3)."""
    newest = (await session.execute(
        select(Interaction.external_id, Interaction.person_id).where(Interaction.turn_id == turn.id)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(1))).one()
    handle = await session.scalar(select(Handle.handle).where(Handle.person_id == turn.person_id,
                                                              Handle.platform == turn.platform).order_by(Handle.id))
    now = utcnow()
    reply = Reply(brand_id=turn.brand_id, turn_id=turn.id, person_id=turn.person_id, draft_id=draft_id,
                  decision_id=decision_id, platform=turn.platform, text=text, in_reply_to=newest.external_id,
                  author_handle=handle or "", status="approved", approved_by_user_id=user_id, approved_at=now,
                  created_at=now)
    session.add(reply)
    await session.flush()
    await emit(session, turn.brand_id, "reply.approved", {
        "reply_id": reply.id, "turn_id": turn.id, "platform": reply.platform, "in_reply_to": reply.in_reply_to,
        "author_handle": reply.author_handle, "text": text})
    return reply


async def list_replies(db: Database, brand_id: int, *, status: str, limit: int, cursor: str | None) -> Page[ReplyOut]:
    """Oldest approval first, the order the people started waiting in; keyset pages."""
    after = decode_cursor(cursor, 2)
    query = select(Reply).where(Reply.brand_id == brand_id, Reply.status == status)
    if after is not None:
        at, last_id = _cursor_time(after[0]), after[1]
        if not isinstance(last_id, int):
            raise ValidationFailed.field("cursor", "is not a cursor this service issued")
        query = query.where(or_(Reply.approved_at > at, and_(Reply.approved_at == at, Reply.id > last_id)))
    async with db.read() as session:
        replies = list((await session.execute(
            query.order_by(Reply.approved_at, Reply.id).limit(limit + 1))).scalars())
    page = replies[:limit]
    next_cursor = encode_cursor(page[-1].approved_at.isoformat(), page[-1].id) if len(replies) > limit else None
    return Page(items=[reply_out(r) for r in page], next_cursor=next_cursor)


async def claim(db: Database, actor: Principal, *, limit: int, lease_seconds: int,
                platform: str | None) -> list[ClaimedReply]:
    """Hand out up to ``limit`` approved replies, and claimed ones whose lease ended, to this caller alone."""
    now = utcnow()
    ready = and_(Reply.brand_id == actor.brand_id, or_(
        Reply.status == "approved", and_(Reply.status == "claimed", Reply.lease_until <= now)))
    if platform is not None:
        ready = and_(ready, Reply.platform == platform_token(platform))
    query = (select(Reply.id, Reply.platform, Reply.text, Reply.in_reply_to, Reply.author_handle)
             .where(ready).order_by(Reply.approved_at, Reply.id).limit(limit))
    if not db.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    async with db.write() as session:
        rows = (await session.execute(query)).all()
        if rows:
            await session.execute(update(Reply).where(Reply.id.in_([r.id for r in rows])).values(
                status="claimed", lease_until=lease_until, claimed_by_key_id=actor.id),
                execution_options={"synchronize_session": False})
    return [ClaimedReply(id=r.id, platform=r.platform, text=r.text, in_reply_to=r.in_reply_to,
                         author_handle=r.author_handle, lease_until=lease_until) for r in rows]


async def confirm_posted(db: Database, actor: Principal, reply_id: int, *, external_id: str, url: str | None,
                         posted_at: dt.datetime | None) -> ReplyOut:
    """The tool posted the reply. Repeating the same post id changes nothing; another post id is a conflict."""
    external_id = _required(external_id, "external_id")
    url = clean_optional(url, "url")
    now = utcnow()
    at = timestamp(posted_at, "posted_at", now=now) if posted_at is not None else now
    try:
        async with db.write() as session:
            reply = await _load(session, db, actor.brand_id, reply_id)
            if reply.status == "posted":
                if reply.external_post_id == external_id:
                    return reply_out(reply)
                raise Conflict(f"reply {reply_id} was already confirmed as post {reply.external_post_id!r}")
            _require_postable(reply, "confirmed")
            if await session.scalar(select(Interaction.id).where(
                    Interaction.brand_id == reply.brand_id, Interaction.platform == reply.platform,
                    Interaction.external_id == external_id)) is not None:
                raise Conflict(f"{reply.platform} post {external_id!r} is already another message in the history")
            await _close_loop(session, reply, external_id, url, at, now)
            await record(session, actor, "reply.posted", "reply", reply.id, turn_id=reply.turn_id,
                         external_id=external_id)
            return reply_out(reply)
    except IntegrityError:  # PostgreSQL: a concurrent confirmation stored the same post id first
        raise Conflict(f"{external_id!r} was confirmed for another message at the same time") from None


async def _close_loop(session: AsyncSession, reply: Reply, external_id: str, url: str | None, at: dt.datetime,
                      now: dt.datetime) -> None:
    """Posted: the reply, its turn, the person's history and counters, and the subscribers all learn it."""
    conversation = await session.scalar(select(Interaction.conversation_key).where(
        Interaction.brand_id == reply.brand_id, Interaction.platform == reply.platform,
        Interaction.external_id == reply.in_reply_to))
    reply.status, reply.external_post_id, reply.url, reply.posted_at = "posted", external_id, url, at
    reply.lease_until = None
    await session.execute(update(Turn).where(Turn.id == reply.turn_id).values(
        status="posted", version=Turn.version + 1, updated_at=now), execution_options={"synchronize_session": False})
    session.add(Interaction(
        brand_id=reply.brand_id, person_id=reply.person_id, direction="outbound", platform=reply.platform,
        external_id=external_id, text=reply.text, occurred_at=at, received_at=now, in_reply_to=reply.in_reply_to,
        conversation_key=conversation, url=url, turn_id=reply.turn_id))
    activity: dict = {}
    tally(activity, reply.person_id, at, inbound=False)
    await apply_activity(session, activity)
    await session.flush()
    await emit(session, reply.brand_id, "reply.posted", {
        "reply_id": reply.id, "turn_id": reply.turn_id, "person_id": reply.person_id, "platform": reply.platform,
        "in_reply_to": reply.in_reply_to, "external_id": external_id, "url": url, "posted_at": at.isoformat()})


async def report_failure(db: Database, actor: Principal, reply_id: int, *, error: str, retry: bool) -> ReplyOut:
    """Posting failed. With ``retry`` the reply waits in the outbox again; without, it fails for good and its
    turn goes back to the reviewers as ``failed``."""
    error = clean_text(error, "error").strip()
    async with db.write() as session:
        reply = await _load(session, db, actor.brand_id, reply_id)
        if reply.status == "failed" and not retry:
            return reply_out(reply)
        _require_postable(reply, "reported failed")
        reply.error, reply.failures, reply.lease_until, reply.claimed_by_key_id = error, reply.failures + 1, None, None
        if retry:
            reply.status = "approved"
            await record(session, actor, "reply.retry", "reply", reply.id, error=error)
            return reply_out(reply)
        reply.status = "failed"
        await session.execute(update(Turn).where(Turn.id == reply.turn_id).values(
            status="failed", version=Turn.version + 1, updated_at=utcnow()),
            execution_options={"synchronize_session": False})
        await emit(session, reply.brand_id, "reply.failed", {
            "reply_id": reply.id, "turn_id": reply.turn_id, "person_id": reply.person_id,
            "platform": reply.platform, "in_reply_to": reply.in_reply_to, "error": error})
        await record(session, actor, "reply.failed", "reply", reply.id, turn_id=reply.turn_id, error=error)
        return reply_out(reply)


async def _load(session: AsyncSession, db: Database, brand_id: int, reply_id: int) -> Reply:
    """The brand's reply, locked against a concurrent confirmation on PostgreSQL; another brand's is 404."""
    query = select(Reply).where(Reply.id == reply_id, Reply.brand_id == brand_id)
    if not db.is_sqlite:
        query = query.with_for_update()
    reply = await session.scalar(query)
    if reply is None:
        raise NotFound(f"no reply {reply_id}")
    return reply


def _require_postable(reply: Reply, action: str) -> None:
    if reply.status not in POSTABLE:
        raise Conflict(f"reply {reply.id} is {reply.status}; only an approved or claimed reply can be {action}")


def _required(value: str, field: str) -> str:
    cleaned = clean_optional(value, field)
    if cleaned is None:
        raise ValidationFailed.field(field, "must not be empty")
    return cleaned


def _cursor_time(value: object) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationFailed.field("cursor", "is not a cursor this service issued") from None


def reply_out(reply: Reply) -> ReplyOut:
    return ReplyOut(id=reply.id, status=reply.status, platform=reply.platform,  # type: ignore[arg-type]
                    text=reply.text, in_reply_to=reply.in_reply_to, author_handle=reply.author_handle,
                    turn_id=reply.turn_id, person_id=reply.person_id, approved_at=reply.approved_at,
                    lease_until=reply.lease_until, external_id=reply.external_post_id, url=reply.url,
                    posted_at=reply.posted_at, error=reply.error, failures=reply.failures)
