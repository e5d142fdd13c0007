"""Relationship memory: what our replies promised, the relationship summary of a long history, what reviewers
changed in drafts, people who may be one person on several platforms, and which turns were reported overdue.

Every table carries ``brand_id`` and ``person_id`` so erasing a person reaches every row about them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime, created_column, id_column

PROMISE_STATES = ("open", "due", "kept", "dropped")
"""``open`` until its due time, ``due`` once a follow-up turn was opened, ``kept``/``dropped`` when settled."""


class Promise(Base):
    """Something an approved reply promised ("we'll get back to you"), with when it falls due."""

    __tablename__ = "promises"
    __table_args__ = (
        Index("ix_promises_brand_status_due", "brand_id", "status", "due_at", "id"),
        Index("ix_promises_sweep", "status", "due_at"),
        Index("ix_promises_person", "person_id", "status"),
        Index("ix_promises_followup", "followup_turn_id"),
    )
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"))
    turn_id: Mapped[int] = mapped_column(BigId, ForeignKey("turns.id"))
    """The turn whose approved reply made the promise."""
    reply_id: Mapped[int] = mapped_column(BigId, ForeignKey("replies.id"))
    kind: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    """The words of the reply that promise it."""
    source: Mapped[str] = mapped_column(String(16))
    """``pattern`` (the policy's ``[promises]``) or ``model`` (the structured classification)."""
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="open")
    followup_turn_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("turns.id"))
    """The turn opened (or joined) when the promise fell due."""
    reason: Mapped[str | None] = mapped_column(Text)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    settled_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_column()


class RelationshipSummary(Base):
    """What a long history says about a person, for the prompt: one per person, covering the items that no
    longer fit the prompt's budget."""

    __tablename__ = "relationship_summaries"
    __table_args__ = (UniqueConstraint("person_id"),)
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    """``model``, ``extract`` (no model: the person's questions and our promises) or ``human`` (edited)."""
    model: Mapped[str | None] = mapped_column(String(200))
    covers: Mapped[list[Any]] = mapped_column(default=list)
    """The ids of the interactions the summary was written from."""
    covers_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """When the newest covered message was written."""
    updated_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = created_column()
    created_at: Mapped[dt.datetime] = created_column()


class ReplyEdit(Base):
    """What a reviewer changed in a draft before approving it: the words removed and added, and how many."""

    __tablename__ = "reply_edits"
    __table_args__ = (Index("ix_reply_edits_brand_time", "brand_id", "created_at", "id"), UniqueConstraint("decision_id"))
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"), index=True)
    turn_id: Mapped[int] = mapped_column(BigId, ForeignKey("turns.id"))
    decision_id: Mapped[int] = mapped_column(BigId, ForeignKey("decisions.id"))
    draft_source: Mapped[str] = mapped_column(String(16))
    removed: Mapped[list[Any]] = mapped_column(default=list)
    """Phrases (runs of words) taken out of the draft."""
    added: Mapped[list[Any]] = mapped_column(default=list)
    """Phrases put in."""
    size: Mapped[int] = mapped_column(Integer)
    """Words removed plus words added; 0 when the draft went out as it was."""
    draft_words: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = created_column()


MERGE_SUGGESTION_STATES = ("open", "merged", "dismissed", "undone")


class MergeSuggestion(Base):
    """Two people who may be one human (same e-mail in their messages, "I wrote you as @x"), with the evidence;
    a reviewer confirms (merged, with what moved kept for an undo) or dismisses it."""

    __tablename__ = "merge_suggestions"
    __table_args__ = (UniqueConstraint("person_id", "other_person_id"),
                      Index("ix_merge_suggestions_brand", "brand_id", "status", "id"))
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"))
    other_person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"), index=True)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    score: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    moved: Mapped[dict[str, Any] | None] = mapped_column()
    """What the merge moved from the other person, so it can be undone."""
    decided_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_column()


class IdentityClue(Base):
    """Something a person's message says about who they are (an e-mail, an order number, "I wrote you as @x on
    Instagram"), so two people sharing one can be suggested as one."""

    __tablename__ = "identity_clues"
    __table_args__ = (UniqueConstraint("brand_id", "kind", "value", "person_id"),)
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    """``email``, ``order`` or ``claims`` (``platform:handle`` they say is theirs)."""
    value: Mapped[str] = mapped_column(String(320))
    interaction_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("interactions.id"))
    created_at: Mapped[dt.datetime] = created_column()


class OverdueTurn(Base):
    """A turn that waited past the brand's ``max_wait``: the row makes ``turn.overdue`` go out once."""

    __tablename__ = "overdue_turns"
    turn_id: Mapped[int] = mapped_column(BigId, ForeignKey("turns.id"), primary_key=True, autoincrement=False)
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"), index=True)
    waiting_since: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_column()
