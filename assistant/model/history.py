"""One thing said or noted about a person, as a draft's prompt tells it: the unit the history budget counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HistoryItem:
    kind: str
    """``mention`` (from them), ``reply`` (from us) or ``note`` (a reviewer's note about them)."""
    text: str
    at: datetime
    id: int | None = None
    """The interaction's id (None for a note), so a finding can link the earlier message."""
