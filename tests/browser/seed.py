"""Seeding turns that wait for review, through the real ingest, with a draft stored the way the drafting
worker stores one (a Draft row, the turn moved to ``pending_review``), so the pages have something to show
without a model."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.turns import Draft, Turn
from assistant.mentions.service import ingest, validate
from tests.support.factories import mention


async def ingest_mention(db: Database, brand_id: int, **kw: Any) -> Any:
    return (await ingest(db, brand_id, [validate(mention(**kw))]))[0]


async def store_draft(db: Database, turn_id: int, text: str, *, source: str = "model",
                      findings: list[dict[str, Any]] | None = None, flags: list[dict[str, Any]] | None = None) -> int:
    """What the worker does when it finishes a draft: a new current draft, the turn back in the queue."""
    async with db.write() as session:
        turn = await session.scalar(select(Turn).where(Turn.id == turn_id))
        assert turn is not None
        draft = Draft(turn_id=turn_id, text=text, source=source, model="test-model" if source == "model" else None,
                      findings=findings or [], flags=flags or [], created_at=utcnow(), attempts=1)
        session.add(draft)
        await session.flush()
        turn.current_draft_id = draft.id
        turn.status = "pending_review"
        turn.version += 1
        return draft.id


async def waiting_turn(db: Database, brand_id: int, *, handle: str, text: str, draft: str,
                       minutes_ago: int = 60, **kw: Any) -> tuple[int, int, int]:
    """A person waiting since ``minutes_ago`` with a drafted reply. Answers (turn_id, person_id, draft_id)."""
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)
    outcome = await ingest_mention(db, brand_id, handle=handle, text=text, created_at=at, **kw)
    draft_id = await store_draft(db, outcome.turn_id, draft, **{k: v for k, v in kw.items() if k in ()})
    return outcome.turn_id, outcome.person_id, draft_id
