"""People as the API shows them (SPEC section 5)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec


class HandleOut(msgspec.Struct):
    platform: str
    handle: str


class NoteOut(msgspec.Struct):
    id: int
    text: str
    at: dt.datetime
    author: str | None


class PersonOut(msgspec.Struct):
    id: int
    display_name: str
    handles: list[HandleOut]
    do_not_reply: bool
    first_contact: bool
    """True until we have answered them once: the page greets a newcomer differently from a regular."""
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    mention_count: int
    reply_count: int
    followers: int | None
    notes: list[NoteOut]


class HistoryItem(msgspec.Struct, omit_defaults=True):
    kind: Literal["mention", "reply", "note"]
    id: int
    text: str
    at: dt.datetime
    platform: str | None = None
    external_id: str | None = None
    in_reply_to: str | None = None
    turn_id: int | None = None


class PersonPatch(msgspec.Struct, forbid_unknown_fields=True):
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    do_not_reply: bool | None = None


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


class MergeIn(msgspec.Struct, forbid_unknown_fields=True):
    other_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    """The person merged into this one (a database id: 64-bit)."""


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
