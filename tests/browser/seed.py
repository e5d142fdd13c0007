"""Seeding turns that wait for review, through the real ingest, with a draft stored the way the drafting
worker stores one (a Draft row, the turn moved to ``pending_review``), so the pages have something to show
without a model."""

from __future__ import annotations

import datetime as dt
from typing import Any

from assistant.db import Database
from assistant.mentions.service import ingest, validate
from tests.support import turn_states
from tests.support.factories import mention


async def ingest_mention(db: Database, brand_id: int, **kw: Any) -> Any:
    return (await ingest(db, brand_id, [validate(mention(**kw))]))[0]


store_draft = turn_states.store_draft


async def waiting_turn(db: Database, brand_id: int, *, handle: str, text: str, draft: str,
                       minutes_ago: int = 60, findings: list[dict[str, Any]] | None = None,
                       **kw: Any) -> tuple[int, int, int]:
    """A person waiting since ``minutes_ago`` with a drafted reply (with ``findings``, if given). Answers
    (turn_id, person_id, draft_id)."""
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)
    outcome = await ingest_mention(db, brand_id, handle=handle, text=text, created_at=at, **kw)
    draft_id = await store_draft(db, outcome.turn_id, draft, findings=findings)
    return outcome.turn_id, outcome.person_id, draft_id
