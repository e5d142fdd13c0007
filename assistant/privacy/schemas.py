"""What a privacy request answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class PersonExport(msgspec.Struct):
    """Everything held about one person (and the people merged into them), table by table, as stored."""

    person_id: int
    exported_at: dt.datetime
    tables: dict[str, list[dict[str, Any]]]


class Erasure(msgspec.Struct):
    """An erasure done: when, and how many rows of each table were deleted or redacted (never what they said)."""

    person_id: int
    status: str
    erased_at: dt.datetime
    rows: dict[str, int]
