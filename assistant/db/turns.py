"""Turns (a person waiting for one reply), the drafts written for them, and the humans' decisions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime, created_column, id_column

TURN_STATES = ("drafting", "pending_review", "approved", "posted", "rejected", "escalated", "skipped", "failed")
OPEN_TURN_STATES = ("drafting", "pending_review")
"""States in which a new mention from the same person and conversation joins the turn."""


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (
        Index("ix_turns_queue", "brand_id", "status", "waiting_since", "id"),
        Index("ix_turns_queue_platform", "brand_id", "status", "platform", "waiting_since", "id"),
        Index("ix_turns_person_open", "person_id", "status"),
    )
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"))
    platform: Mapped[str] = mapped_column(String(32))
    conversation_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    waiting_since: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    current_draft_id: Mapped[int | None] = mapped_column(BigId)
    escalation_rule: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped by every change, so concurrent deciders can detect that they lost."""
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = created_column()
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Draft(Base):
    __tablename__ = "drafts"
    id: Mapped[int] = id_column()
    turn_id: Mapped[int] = mapped_column(BigId, ForeignKey("turns.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    """``model``, ``fallback`` or ``human``."""
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_hash: Mapped[str | None] = mapped_column(String(64))
    policy_hash: Mapped[str | None] = mapped_column(String(64))
    findings: Mapped[list[Any]] = mapped_column(default=list)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    guidance: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    """Why a fallback was used, when it was."""
    answers_through_id: Mapped[int | None] = mapped_column(BigId)
    """The newest mention (interaction id) the draft saw; a newer one in the turn makes it stale."""
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = created_column()


class Decision(Base):
    __tablename__ = "decisions"
    id: Mapped[int] = id_column()
    turn_id: Mapped[int] = mapped_column(BigId, ForeignKey("turns.id"), index=True)
    draft_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("drafts.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    """``approve``, ``reject``, ``escalate`` or ``regenerate``."""
    final_text: Mapped[str | None] = mapped_column(Text)
    diff: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    override_reason: Mapped[str | None] = mapped_column(Text)
    policy_hash: Mapped[str | None] = mapped_column(String(64))
    findings: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = created_column()
