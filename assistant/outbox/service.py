"""Outbox rules. ``create_reply`` is how an approval reaches the outbox (called by the review service)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.db.base import utcnow
from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction
from assistant.db.turns import Turn
from assistant.webhooks.events import emit


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
