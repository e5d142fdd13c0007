"""The one cursor codec (assistant/pagination.py): what a cursor may hold, and that anything else is a 422 on
the ``cursor`` field."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from assistant.errors import ValidationFailed
from assistant.pagination import AfterId, AfterTime, decode_cursor, encode_cursor
from assistant.people.service import AfterHistoryItem

UTC = dt.timezone.utc


def raw(json_text: str) -> str:
    return base64.urlsafe_b64encode(json_text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("position", [
    AfterId(1), AfterId(2**63 - 1), AfterTime(dt.datetime(2026, 11, 30, 9, 1, 2, 345678, tzinfo=UTC), 7),
    AfterHistoryItem(dt.datetime(2017, 10, 10, 15, 16, 8, tzinfo=UTC), 0, 3)])
def test_a_cursor_decodes_to_the_position_it_was_made_from(position) -> None:
    assert decode_cursor(encode_cursor(position), type(position)) == position


def test_times_in_another_zone_come_back_in_utc() -> None:
    at = dt.datetime(2026, 1, 1, 3, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    decoded = decode_cursor(raw(f'["{at.isoformat()}", 5]'), AfterTime)
    assert decoded is not None and decoded.at == at and decoded.at.tzinfo == UTC


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None, AfterTime) is None


BAD = {
    "a time without a zone": (AfterTime, raw('["2026-01-01T00:00:00", 5]')),
    "a time no zone can reach in UTC": (AfterTime, raw('["0001-01-01T00:00:00+05:00", 5]')),
    "not a time": (AfterTime, raw('["yesterday", 5]')),
    "an id past 2^63-1": (AfterTime, raw('["2026-01-01T00:00:00Z", 9223372036854775808]')),
    "a huge integer": (AfterId, raw("[99999999999999999999999999]")),
    "id zero": (AfterId, raw("[0]")),
    "a negative id": (AfterId, raw("[-4]")),
    "a boolean": (AfterId, raw("[true]")),
    "a float": (AfterId, raw("[1.5]")),
    "an object": (AfterId, raw('{"id": 1}')),
    "too many parts": (AfterId, raw("[1, 2]")),
    "too few parts": (AfterTime, raw('["2026-01-01T00:00:00Z"]')),
    "a rank that is neither note nor message": (AfterHistoryItem, raw('["2026-01-01T00:00:00Z", 7, 1]')),
    "not JSON": (AfterId, raw("[1")),
    "not base64": (AfterId, "%%%"),
    "not ASCII": (AfterId, "é"),
    "empty": (AfterId, ""),
}


@pytest.mark.parametrize("kind, cursor", BAD.values(), ids=BAD.keys())
def test_every_other_cursor_is_refused_on_the_cursor_field(kind, cursor) -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(cursor, kind)
    assert refused.value.errors == [{"field": "cursor", "message": "is not a cursor this service issued"}]
