"""Approved replies for outbox tests, made the way the review service makes them: a mention is ingested,
its turn is drafted and approved through ``assistant.turns`` and ``create_reply`` puts the text in the
outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from assistant.db import Database
from assistant.db.outbox import Reply
from assistant.db.turns import Turn
from assistant.mentions import service as mentions
from assistant.outbox.service import create_reply
from tests.support import turn_states
from tests.support.db import one
from tests.support.factories import BrandKit, mention


async def approved_replies(db: Database, kit: BrandKit, count: int, **mention_fields: Any) -> list[int]:
    """``count`` approved replies, one per person (``@person0``, ``@person1``…), oldest approval first.
    ``mention_fields`` go into every mention."""
    bodies = [mention(handle=f"@person{i}", **mention_fields) for i in range(count)]
    outcomes = await mentions.ingest(db, kit.id, [mentions.validate(body) for body in bodies])
    turn_ids = list(dict.fromkeys(o.turn_id for o in outcomes))
    return await db.run_write(_approve_all, turn_ids, kit.reviewer_id)


def _approve_all(conn: Connection, turn_ids: list[int], reviewer_id: int) -> list[int]:
    reply_ids = []
    for turn_id in turn_ids:
        text = f"Thanks for writing, we are on it ({turn_id})."
        turn_states.act(conn, turn_id, "draft", reviewer_id, text=text)
        turn_states.act(conn, turn_id, "approve", reviewer_id, text=text)
        turn = turn_states.load_turn(conn, turn_id)
        reply_ids.append(create_reply(conn, turn, draft_id=turn.current_draft_id, decision_id=None, text=text,
                                      user_id=reviewer_id))
    return reply_ids


async def claim(client: Any, kit: BrandKit, *, limit: int = 1, lease_seconds: int = 60) -> dict[int, str]:
    """Claim through the API as ``kit``'s outbox key; answers each claimed reply's claim token by id."""
    answer = await client.post("/api/v1/replies/claim", json={"limit": limit, "lease_seconds": lease_seconds},
                               headers=kit.outbox)
    assert answer.status_code == 200, answer.text
    return {item["id"]: item["claim_token"] for item in answer.json()["items"]}


async def reply_row(db: Database, reply_id: int) -> Row[Any]:
    return await one(db, select(Reply).where(Reply.id == reply_id))


async def turn_status(db: Database, reply_id: int) -> str:
    return (await one(db, select(Turn.status).join(Reply, Reply.turn_id == Turn.id).where(Reply.id == reply_id))).status
