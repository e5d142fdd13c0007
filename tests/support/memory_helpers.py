"""Promises made the way the product makes them: a turn drafted, a reply approved through the review API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import Row, select, update

from assistant.db import Database
from assistant.db.memory import Promise
from tests.support.db import execute, rows
from tests.support.factories import BrandKit
from tests.support.review_helpers import pending_turn

PROMISING = "Hi Ana, sorry about that. I'll check with the warehouse and get back to you tomorrow."


async def approved_reply(client: AsyncTestClient, db: Database, kit: BrandKit, *, text: str = PROMISING,
                         **fields: Any) -> dict[str, Any]:
    """A mention, a draft saying ``text``, approved as is: answers the turn, draft and reply ids."""
    turn_id, draft_id = await pending_turn(client, db, kit, draft_text=text, **fields)
    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id}, headers=kit.reviewer)
    assert response.status_code == 200, response.text
    return {"turn_id": turn_id, "draft_id": draft_id, "reply_id": response.json()["reply_id"]}


async def promises_of(db: Database, **where: Any) -> list[Row[Any]]:
    query = select(Promise).order_by(Promise.id)
    for name, value in where.items():
        query = query.where(getattr(Promise, name) == value)
    return await rows(db, query)


async def make_due(db: Database, promise_id: int, ago: dt.timedelta = dt.timedelta(minutes=1)) -> None:
    """Move a promise's due time into the past, as if its time had come."""
    await execute(db, update(Promise).where(Promise.id == promise_id).values(
        due_at=dt.datetime.now(dt.timezone.utc) - ago))
