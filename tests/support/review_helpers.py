"""Turns waiting for review, made the way the product makes them: mentions through the ingest API, then a
draft stored and the turn moved to ``pending_review`` as the drafting worker would."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from assistant.db import Database
from tests.support import turn_states
from tests.support.factories import BrandKit, mention


async def post_mention(client: AsyncTestClient, kit: BrandKit, **fields: Any) -> dict[str, Any]:
    """Ingest one mention (keyword arguments as for ``factories.mention``); answers the ingest response."""
    response = await client.post("/api/v1/mentions", json=mention(**fields), headers=kit.ingest)
    assert response.status_code in (200, 202), response.text
    return response.json()


async def store_draft(db: Database, turn_id: int, text: str = "Hi Ana, sorry about the wait: it ships today.",
                      source: str = "model") -> int:
    """A new current draft for the ``drafting`` turn, the older one stale, the turn in ``pending_review``."""
    return await turn_states.store_draft(db, turn_id, text, source=source)


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
    await turn_states.escalate_by_rule(db, turn_id, rule)
    return turn_id
