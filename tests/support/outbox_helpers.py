"""Approved replies for outbox tests, made the way the review service makes them: a mention is ingested,
its turn is put in ``approved`` and ``create_reply`` puts the text in the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from assistant.db import Database
from assistant.db.outbox import Reply
from assistant.db.turns import Turn
from assistant.mentions import service as mentions
from assistant.outbox.service import create_reply
from tests.support.factories import BrandKit, mention


async def approved_replies(db: Database, kit: BrandKit, count: int, **mention_fields: Any) -> list[int]:
    """``count`` approved replies, one per person (``@person0``, ``@person1``…), oldest approval first.
    ``mention_fields`` go into every mention."""
    bodies = [mention(handle=f"@person{i}", **mention_fields) for i in range(count)]
    outcomes = await mentions.ingest(db, kit.id, [mentions.validate(body) for body in bodies])
    turn_ids = list(dict.fromkeys(o.turn_id for o in outcomes))
    reply_ids = []
    async with db.write() as session:
        await session.execute(update(Turn).where(Turn.id.in_(turn_ids)).values(status="approved"))
        for turn_id in turn_ids:
            turn = await session.scalar(select(Turn).where(Turn.id == turn_id))
            reply = await create_reply(session, turn=turn, draft_id=None, decision_id=None,
                                       text=f"Thanks for writing, we are on it ({turn_id}).", user_id=kit.reviewer_id)
            reply_ids.append(reply.id)
    return reply_ids


async def reply_row(db: Database, reply_id: int) -> Reply:
    async with db.read() as session:
        return (await session.execute(select(Reply).where(Reply.id == reply_id))).scalar_one()


async def turn_status(db: Database, reply_id: int) -> str:
    async with db.read() as session:
        return (await session.execute(select(Turn.status).join(Reply, Reply.turn_id == Turn.id)
                                      .where(Reply.id == reply_id))).scalar_one()
