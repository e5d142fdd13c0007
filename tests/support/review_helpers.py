"""Turns waiting for review, made the way the product makes them: mentions through the ingest API, then a
draft stored and the turn moved to ``pending_review`` as the drafting worker would."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import update

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.turns import Draft, Turn
from tests.support.factories import BrandKit, mention


async def post_mention(client: AsyncTestClient, kit: BrandKit, **fields: Any) -> dict[str, Any]:
    """Ingest one mention (keyword arguments as for ``factories.mention``); answers the ingest response."""
    response = await client.post("/api/v1/mentions", json=mention(**fields), headers=kit.ingest)
    assert response.status_code in (200, 202), response.text
    return response.json()


async def store_draft(db: Database, turn_id: int, text: str = "Hi Ana, sorry about the wait: it ships today.",
                      source: str = "model") -> int:
    """A new current draft for the turn, the older one stale, the turn in ``pending_review``."""
    async with db.write() as session:
        turn = await session.get(Turn, turn_id)
        assert turn is not None
        draft = Draft(turn_id=turn_id, text=text, source=source, model="test-model" if source == "model" else None,
                      findings=[], flags=[], created_at=utcnow())
        session.add(draft)
        await session.flush()
        if turn.current_draft_id is not None:
            await session.execute(update(Draft).where(Draft.id == turn.current_draft_id).values(stale=True))
        turn.current_draft_id = draft.id
        turn.status = "pending_review"
        turn.version += 1
        return draft.id


async def pending_turn(client: AsyncTestClient, db: Database, kit: BrandKit, *,
                       draft_text: str = "Hi Ana, sorry about the wait: it ships today.",
                       **fields: Any) -> tuple[int, int]:
    """A mention whose turn now awaits review; answers (turn_id, draft_id)."""
    turn_id = (await post_mention(client, kit, **fields))["turn_id"]
    return turn_id, await store_draft(db, turn_id, draft_text)


async def escalated_turn(client: AsyncTestClient, db: Database, kit: BrandKit, *, rule: str = "legal",
                         **fields: Any) -> int:
    """A mention whose turn an ``[[escalate]]`` rule sent to a human, as the drafting worker leaves it: status
    ``escalated``, the rule's name, no draft."""
    turn_id = (await post_mention(client, kit, **fields))["turn_id"]
    async with db.write() as session:
        await session.execute(update(Turn).where(Turn.id == turn_id).values(
            status="escalated", escalation_rule=rule, version=Turn.version + 1, current_draft_id=None))
    return turn_id
