"""Webhook subscriptions and every delivery attempt made to them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime, created_column, id_column


class Webhook(Base):
    """A subscription. The signing secret must be kept usable (HMAC needs it), so it is stored encrypted, not
    hashed (``assistant.webhooks.secret_box``)."""

    __tablename__ = "webhooks"
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column()
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = created_column()


class WebhookDelivery(Base):
    """One event for one subscription; ``event_id`` is the stable ``webhook-id`` across retries."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = id_column()
    webhook_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhooks.id"), index=True)
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending``, ``delivered`` or ``failed`` (retries exhausted)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_column()


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    id: Mapped[int] = id_column()
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_deliveries.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = created_column()
