"""What scheduling tools send and get back (SPEC section 5)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from assistant.validation import AuthorIn, Ident, Text


class MentionIn(msgspec.Struct, forbid_unknown_fields=True):
    platform: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    external_id: Ident
    text: Text
    created_at: dt.datetime
    author: AuthorIn
    in_reply_to: Ident | None = None
    conversation_id: Ident | None = None
    url: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    lang: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class MentionBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    mentions: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=1000)]
    """Each item has the shape of a single mention; items are validated one by one."""


class MentionAccepted(msgspec.Struct):
    id: int
    turn_id: int | None
    person_id: int
    status: str
    """The turn's status (``drafting``, or ``skipped`` for a person who asked not to be answered)."""
    duplicate: bool


class BatchItemResult(msgspec.Struct, omit_defaults=True):
    index: int
    status: Literal["accepted", "duplicate", "invalid"]
    id: int | None = None
    turn_id: int | None = None
    person_id: int | None = None
    errors: list[dict[str, str]] | None = None


class BatchResult(msgspec.Struct):
    results: list[BatchItemResult]


class TurnRef(msgspec.Struct):
    id: int
    status: str


class MentionOut(msgspec.Struct):
    id: int
    person_id: int
    platform: str
    external_id: str
    text: str
    created_at: dt.datetime
    turn: TurnRef | None
    in_reply_to: str | None = None
    conversation_id: str | None = None
    url: str | None = None
