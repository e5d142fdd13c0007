"""Ids, handles, platform tokens, text and times: the field types and rules every incoming message obeys
beyond its JSON shape. Shared by ingest, history import, review and the outbox, so it belongs to none of them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import msgspec

from assistant.errors import ValidationFailed

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Short = Annotated[str, msgspec.Meta(max_length=200)]


class AuthorIn(msgspec.Struct, forbid_unknown_fields=True):
    """The person behind a message, as a scheduling tool or a history file names them."""

    handle: Ident
    external_id: Ident | None = None
    display_name: Short | None = None
    followers: Annotated[int, msgspec.Meta(ge=0)] | None = None


PLATFORM = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
# A handle is one token: no spaces, controls or markup characters, on any platform.
HANDLE = re.compile(r"^[^\s<>\"'`\\/]{1,200}$")
MAX_FUTURE = dt.timedelta(days=1)
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROLS_OR_NEWLINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SURROGATES = re.compile("[\ud800-\udfff]")


def platform_token(value: str, field: str = "platform") -> str:
    token = value.strip().lower()
    if not PLATFORM.match(token):
        raise ValidationFailed.field(field, "use a lowercase platform token such as x, bluesky or mastodon")
    return token


def handle_key(value: str, field: str = "author.handle") -> str:
    """Handles match case-insensitively and without the leading @."""
    handle = value.strip().removeprefix("@").lower()
    if not HANDLE.match(handle) or _has_controls(handle):
        raise ValidationFailed.field(field, "a handle is one word without spaces, quotes or < > characters")
    return handle


def clean_text(value: str, field: str = "text") -> str:
    """Text is kept exactly as sent (right-to-left and zero-width characters included), but NUL and other
    control characters that no platform allows are refused, as is text that is only whitespace."""
    if "\x00" in value:
        raise ValidationFailed.field(field, "must not contain NUL characters")
    if _has_controls(value, allow_newlines=True):
        raise ValidationFailed.field(field, "must not contain control characters")
    if not value.strip():
        raise ValidationFailed.field(field, "must not be empty or only whitespace")
    if SURROGATES.search(value):
        raise ValidationFailed.field(field, "must not contain unpaired surrogates")
    return value


def clean_optional(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if "\x00" in value or _has_controls(value):
        raise ValidationFailed.field(field, "must not contain control characters")
    return value.strip() or None


def identifier(value: str, field: str) -> str:
    """A required id (external ids): cleaned like optional text, and not empty once trimmed."""
    cleaned = clean_optional(value, field)
    if not cleaned:
        raise ValidationFailed.field(field, "must not be empty")
    return cleaned


def timestamp(value: dt.datetime, field: str = "created_at", *, now: dt.datetime) -> dt.datetime:
    """Naive times are taken as UTC; times more than a day ahead are a sender's clock error."""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    aware = aware.astimezone(dt.timezone.utc)
    if aware > now + MAX_FUTURE:
        raise ValidationFailed.field(field, "is more than a day in the future")
    return aware


def _has_controls(value: str, allow_newlines: bool = False) -> bool:
    return (CONTROLS if allow_newlines else CONTROLS_OR_NEWLINES).search(value) is not None
