"""The demo shows relationship memory: a promise that fell due with its follow-up turn, someone left behind,
a summarised regular and edits on the edits page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from assistant.db.memory import Promise, RelationshipSummary, ReplyEdit
from assistant.db.people import Person
from assistant.db.turns import Turn
from assistant.demo import draft_waiting, seed
from assistant.demo_memory import REGULAR
from assistant.memory.left_behind import count_left_behind


async def test_the_demo_shows_each_part_of_relationship_memory(db, settings):
    logins, key, fresh = await seed(db, settings)
    assert key and fresh
    await draft_waiting(settings, with_examples=False, with_memory=True)

    def look(conn):
        due = conn.execute(select(Promise).where(Promise.status == "due")).all()
        followup = conn.execute(select(Turn).where(Turn.id == due[0].followup_turn_id)).one()
        regular = conn.scalar(select(Person.id).where(Person.display_name == REGULAR[0]))
        summary = conn.execute(select(RelationshipSummary).where(RelationshipSummary.person_id == regular)).first()
        return due, followup, summary, conn.scalars(select(ReplyEdit.size)).all()
    due, followup, summary, edits = await db.run_read(look)
    brand_id = followup.brand_id
    assert len(due) == 1 and followup.status == "pending_review"
    assert summary.source == "extract" and len(summary.covers) > 10 and "Guji" in summary.text
    assert len(edits) == 3 and all(size > 0 for size in edits)
    assert await count_left_behind(db, brand_id) >= 1
    assert dt.datetime.now(dt.timezone.utc) > due[0].due_at
