"""What the promises API answers and accepts (SPEC 12)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec


class PromiseOut(msgspec.Struct, omit_defaults=False):
    id: int
    person_id: int
    kind: str
    text: str
    reply_id: int
    turn_id: int
    source: str
    due_at: dt.datetime
    status: str
    created_at: dt.datetime
    followup_turn_id: int | None = None
    settled_at: dt.datetime | None = None
    reason: str | None = None


class SettleIn(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["kept", "dropped"]
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
