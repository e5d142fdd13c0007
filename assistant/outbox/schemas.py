"""What scheduling tools send to the outbox and get back (SPEC section 5, replies; section 12, claim tokens)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

ReplyStatus = Literal["approved", "claimed", "posted", "failed"]
LeaseSeconds = Annotated[int, msgspec.Meta(ge=5, le=3600)]
ClaimToken = Annotated[str, msgspec.Meta(min_length=1, max_length=100, description=(
    "The `claim_token` the claim answered for this reply: only its holder may renew, confirm or fail it"))]


class ClaimIn(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)]
    lease_seconds: LeaseSeconds
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
    """The same as ``lease_expires_at`` (kept for tools written before claim tokens)."""
    claim_token: str
    """Proof of this claim, for ``renew``, ``posted`` and ``failed``; dead once the lease ends."""
    lease_expires_at: dt.datetime


class Claimed(msgspec.Struct):
    items: list[ClaimedReply]


class RenewIn(msgspec.Struct, forbid_unknown_fields=True):
    claim_token: ClaimToken
    lease_seconds: LeaseSeconds
    """The lease then ends this many seconds from now."""


class Renewed(msgspec.Struct):
    lease_expires_at: dt.datetime


class PostedIn(msgspec.Struct, forbid_unknown_fields=True):
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """The platform's id of the post the tool made."""
    claim_token: ClaimToken
    url: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    posted_at: dt.datetime | None = None


class FailedIn(msgspec.Struct, forbid_unknown_fields=True):
    error: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    retry: bool
    """True: the failure was passing (rate limit, outage), put the reply back. False: it cannot be posted."""
    claim_token: ClaimToken


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
