"""What scheduling tools send to the outbox and get back (SPEC section 5, replies)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

ReplyStatus = Literal["approved", "claimed", "posted", "failed"]


class ClaimIn(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)]
    lease_seconds: Annotated[int, msgspec.Meta(ge=5, le=3600)]
    """How long the tool may take to post; after that the reply is handed out again."""
    platform: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class ClaimedReply(msgspec.Struct):
    id: int
    platform: str
    text: str
    in_reply_to: str
    """The platform's id of the mention this reply answers."""
    author_handle: str
    lease_until: dt.datetime


class Claimed(msgspec.Struct):
    items: list[ClaimedReply]


class PostedIn(msgspec.Struct, forbid_unknown_fields=True):
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """The platform's id of the post the tool made."""
    url: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    posted_at: dt.datetime | None = None


class FailedIn(msgspec.Struct, forbid_unknown_fields=True):
    error: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    retry: bool
    """True: the failure was passing (rate limit, outage), put the reply back. False: it cannot be posted."""


class ReplyOut(msgspec.Struct):
    id: int
    status: ReplyStatus
    platform: str
    text: str
    in_reply_to: str
    author_handle: str
    turn_id: int
    person_id: int
    approved_at: dt.datetime
    lease_until: dt.datetime | None
    external_id: str | None
    """The platform's id of our post, once confirmed."""
    url: str | None
    posted_at: dt.datetime | None
    error: str | None
    failures: int
