"""Brands (tenants), their API keys, and the users who review for them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime, created_column, id_column


class Brand(Base):
    __tablename__ = "brands"
    id: Mapped[int] = id_column()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    policy_toml: Mapped[str | None] = mapped_column(Text)
    policy_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = created_column()


class ApiKey(Base):
    """A scheduling tool's key. Only a SHA-256 of the secret is kept; the prefix lets people recognise it."""

    __tablename__ = "api_keys"
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = created_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    """Part of every session cookie; moved on at sign-out and password change, ending older sessions."""
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = created_column()


class UserToken(Base):
    """A reviewer token for the review API, hashed like API keys."""

    __tablename__ = "user_tokens"
    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = created_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """After this the token no longer authenticates (``reviewer_token_days`` after it was issued)."""
