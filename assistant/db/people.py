"""People, their handles on each platform, reviewers' notes, and every message between them and the brand."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime, created_column, id_column


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    do_not_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    followers: Mapped[int | None] = mapped_column(Integer)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    mention_count: Mapped[int] = mapped_column(Integer, default=0)
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("people.id"))
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """Set when the person asked to be forgotten: the row stays, without identity, for the fairness counts."""
    created_at: Mapped[dt.datetime] = created_column()


class Handle(Base):
    __tablename__ = "handles"
    __table_args__ = (UniqueConstraint("brand_id", "platform", "handle"),
                      Index("ix_handles_brand_handle", "brand_id", "handle"))
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(200))
    """Lower-cased, without the leading @."""
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = created_column()


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_column()


class Interaction(Base):
    """One message: ``inbound`` (a mention) or ``outbound`` (our posted or imported reply)."""

    __tablename__ = "interactions"
    __table_args__ = (
        UniqueConstraint("brand_id", "platform", "external_id"),
        Index("ix_interactions_person_history", "person_id", "occurred_at", "id"),
        Index("ix_interactions_turn", "turn_id"),
    )
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id"))
    direction: Mapped[str] = mapped_column(String(8))
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = created_column()
    in_reply_to: Mapped[str | None] = mapped_column(String(200))
    conversation_key: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))
    followers: Mapped[int | None] = mapped_column(Integer)
    turn_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("turns.id"))
    raw: Mapped[dict[str, Any] | None] = mapped_column()
