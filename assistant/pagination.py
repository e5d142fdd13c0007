"""Cursor pagination (SPEC 5): ``?limit=`` 1 to 100 (default 50) and an opaque ``?cursor=``."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from assistant.errors import ValidationFailed

T = TypeVar("T")

Limit = Annotated[int, Parameter(ge=1, le=100, description="Items per page, 1 to 100")]
Cursor = Annotated[str | None, Parameter(max_length=500, description="`next_cursor` of the previous page")]


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed.field("cursor", "is not a cursor this service issued") from None
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationFailed.field("cursor", "is not a cursor this service issued")
    return values
