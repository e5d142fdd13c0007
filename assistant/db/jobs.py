"""Durable background work: drafting a turn, delivering a webhook."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import BigId, Base, UTCDateTime, created_column, id_column

JOB_STATES = ("queued", "running", "done", "dead")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_ready", "status", "run_after", "id"),
                      Index("ix_jobs_subject", "subject_id", "kind", "status"))  # is a turn's job queued already
    id: Mapped[int] = id_column()
    kind: Mapped[str] = mapped_column(String(32))
    brand_id: Mapped[int | None] = mapped_column(BigId)
    subject_id: Mapped[int | None] = mapped_column(BigId)
    """The turn or delivery the job works on."""
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=6)
    run_after: Mapped[dt.datetime] = created_column()
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    locked_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = created_column()
