"""Turns brought to a state the way the product brings them there: every change through ``assistant.turns``
(the drafter's draft, a rule's escalation, a reviewer's decision, the outbox's posted or failed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from assistant import turns
from assistant.db import Database
from assistant.db.turns import Turn

PATHS: dict[str, tuple[str, ...]] = {
    "drafting": (),
    "pending_review": ("draft",),
    "approved": ("draft", "approve"),
    "posted": ("draft", "approve", "post"),
    "failed": ("draft", "approve", "fail"),
    "rejected": ("draft", "reject"),
    "escalated": ("draft", "escalate"),
    "skipped": ("skip",),
}
"""From a freshly opened (``drafting``) turn, the actions that lead to each status."""


def load_turn(conn: Connection, turn_id: int) -> turns.TurnRow:
    brand_id = conn.scalar(select(Turn.brand_id).where(Turn.id == turn_id))
    return turns.load(conn, brand_id, turn_id)


def act(conn: Connection, turn_id: int, action: str, user_id: int, *, text: str = "Hi, on it.") -> None:
    """Take ``action`` on the turn as its actor would (``user_id`` for a reviewer's decisions)."""
    turn = load_turn(conn, turn_id)
    if action == "draft":
        turns.store_draft(conn, turn, draft_values(text))
    elif action == "escalate_by_rule":
        turns.escalate_by_rule(conn, turn, "legal")
    elif action == "skip":
        turns.skip(conn, turn)
    elif action == "approve":
        if turn.status == "escalated" or turn.current_draft_id is None:
            turns.approve(conn, turn, user_id, draft_id=None, final_text=text, diff="", policy_hash="", findings=[])
        else:
            turns.approve(conn, turn, user_id, draft_id=turn.current_draft_id, final_text=text, diff="",
                          policy_hash="", findings=[])
    elif action in ("reject", "escalate"):
        getattr(turns, action)(conn, turn, user_id, "a reason")
    elif action == "regenerate":
        turns.regenerate(conn, turn, user_id, None)
    elif action == "redraft":
        turns.replace_fallback(conn, turn, turn.current_draft_id or 0, draft_values(text))
    elif action == "post":
        turns.post(conn, [turn.id])
    elif action == "fail":
        turns.fail(conn, turn.id)
    elif action == "erase":
        turns.erase(conn, [turn.id])
    elif action == "join":
        raise ValueError("a turn is joined by ingesting a mention")
    else:
        raise ValueError(action)


async def reach(db: Database, turn_id: int, status: str, user_id: int) -> None:
    """Walk a freshly opened turn to ``status``."""
    for action in PATHS[status]:
        await db.run_write(act, turn_id, action, user_id)


def draft_values(text: str, *, source: str = "model", findings: list[dict[str, Any]] | None = None,
                 flags: list[dict[str, Any]] | None = None, error: str | None = None) -> dict[str, Any]:
    return {"text": text, "source": source, "model": "test-model" if source == "model" else None,
            "findings": findings or [], "flags": flags or [], "attempts": 1, "error": error}


async def store_draft(db: Database, turn_id: int, text: str, *, source: str = "model",
                      findings: list[dict[str, Any]] | None = None, flags: list[dict[str, Any]] | None = None,
                      error: str | None = None) -> int:
    """What the drafting worker does when it finishes a draft for a ``drafting`` turn: a new current draft
    (the one before stale), the turn in ``pending_review``. Answers the draft's id."""
    values = draft_values(text, source=source, findings=findings, flags=flags, error=error)
    return await db.run_write(lambda conn: turns.store_draft(conn, load_turn(conn, turn_id), values))


async def escalate_by_rule(db: Database, turn_id: int, rule: str = "legal") -> None:
    """What the drafting worker does when an ``[[escalate]]`` rule matches: the turn ``escalated``, no draft."""
    await db.run_write(lambda conn: turns.escalate_by_rule(conn, load_turn(conn, turn_id), rule))
