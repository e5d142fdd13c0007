"""Saved replies (snippets): a brand's named texts a reviewer inserts into a reply, owned by ``assistant.snippets``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assistant.db.base import Base, BigId, UTCDateTime, created_column, id_column



class Snippet(Base):
    __tablename__ = "snippets"
    __table_args__ = (UniqueConstraint("brand_id", "name"),)
    id: Mapped[int] = id_column()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    name: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
