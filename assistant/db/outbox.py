"""Replies a human approved, waiting for a scheduling tool to claim, post and confirm them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime, created_column, id_column

REPLY_STATES = ("approved", "claimed", "posted", "failed")


class Reply(Base):
    __tablename__ = "replies"
    __table_args__ = (
        Index("ix_replies_outbox", "brand_id", "status", "approved_at", "id"),
        UniqueConstraint("turn_id"),
    )
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    turn_id: Mapped[int] = mapped_column(BigId, ForeignKey("turns.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"))
    draft_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("drafts.id"))
    decision_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("decisions.id"))
    platform: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    in_reply_to: Mapped[str] = mapped_column(String(200))
    author_handle: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="approved")
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """When the current claim ends: until then only the holder of its token may renew, confirm or fail it."""
    claim_token_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the current (or last) claim's token; the token itself is only ever in the claim's answer."""
    claimed_by_key_id: Mapped[int | None] = mapped_column(BigId)
    external_post_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    approved_by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime] = created_column()
    created_at: Mapped[dt.datetime] = created_column()
