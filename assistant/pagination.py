"""Cursor pagination (SPEC 5): ``?limit=`` 1 to 100 (default 50) and an opaque ``?cursor=``.

A cursor is the position of the last item of a page: a typed tuple (a ``Position`` subclass such as ``AfterId``
or ``AfterTime``) encoded as URL-safe base64 of a JSON array. It is decoded as that type and nothing else, so a
cursor with a time without a zone, an id out of range, the wrong arity or garbage is a 422 on the ``cursor``
field before any query runs, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from assistant.errors import ValidationFailed

T = TypeVar("T")

Limit = Annotated[int, Parameter(ge=1, le=100, description="Items per page, 1 to 100")]
Cursor = Annotated[str | None, Parameter(max_length=500, description="`next_cursor` of the previous page")]

RowId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
"""A row id: what fits the database's 64-bit id columns."""
Instant = Annotated[dt.datetime, msgspec.Meta(tz=True)]
"""A time with its zone (the stored times are UTC)."""

_EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc)
_LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc)
_NOT_OURS = "is not a cursor this service issued"


class Position(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Base of every cursor type. Times are checked to lie where any zone can be converted to UTC and the
    databases can store it, and are given back in UTC."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, dt.datetime):
                if not _EARLIEST <= value <= _LATEST:
                    raise ValueError("time out of range")
                setattr(self, name, value.astimezone(dt.timezone.utc))


class AfterId(Position):
    """Pages in id order."""

    id: RowId


class AfterTime(Position):
    """Pages in (time, id) order, either direction."""

    at: Instant
    id: RowId


P = TypeVar("P", bound=Position)


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(position: Position) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type[P]) -> P | None:
    """The position ``cursor`` holds, as ``kind``; None for the first page. Anything else is a 422."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise ValidationFailed.field("cursor", _NOT_OURS) from None

