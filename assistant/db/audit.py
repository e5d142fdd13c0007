"""The append-only audit log: who did what to which thing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, created_column, id_column


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_brand_time", "brand_id", "created_at", "id"),)
    id: Mapped[int] = id_column()
    brand_id: Mapped[int | None] = mapped_column(BigId)
    actor_type: Mapped[str] = mapped_column(String(16))
    """``user``, ``api_key`` or ``system``."""
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(BigId)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = created_column()
