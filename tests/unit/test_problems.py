"""Schema errors become problem details that name the field."""

import msgspec
import pytest

from assistant.errors import BadRequest, ValidationFailed
from assistant.problems import decode, field_errors


class Author(msgspec.Struct, forbid_unknown_fields=True):
    handle: str


class Body(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    author: Author


@pytest.mark.parametrize(("message", "field"), [
    ("Expected `str`, got `int` - at `$.author.handle`", "author.handle"),
    ("Expected `str`, got `int` - at `$.data.text`", "text"),
    ("Object contains unknown field `zzz`", "zzz"),
    ("Object contains unknown field `x` - at `$.author`", "author.x"),
    ("Object missing required field `text`", "text"),
    ("Expected `object`, got `array`", "body"),
])
def test_field_errors_name_the_field(message: str, field: str) -> None:
    assert field_errors(message)[0]["field"] == field


@pytest.mark.parametrize(("raw", "error", "field"), [
    (b'{"text": 1, "author": {"handle": "a"}}', ValidationFailed, "text"),
    (b'{"text": "a", "author": {"handle": "a"}, "extra": 1}', ValidationFailed, "extra"),
    (b'{"text": "a"', BadRequest, None),
    (b'{"text": "\\ud800", "author": {"handle": "a"}}', BadRequest, None),
    (b'\xff\xfe', BadRequest, None),
])
def test_decode_tells_malformed_from_invalid(raw: bytes, error: type, field: str | None) -> None:
    with pytest.raises(error) as caught:
        decode(raw, Body)
    if field:
        assert caught.value.errors[0]["field"] == field
    assert caught.value.status in {400, 422}
