"""The rules every incoming message obeys beyond its JSON shape (assistant/validation.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.errors import ValidationFailed
from assistant import validation
from assistant.mentions.schemas import AuthorIn, MentionIn
from assistant.mentions.service import validate

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("raw, key", [("@Ana", "ana"), ("ana", "ana"), ("  @ANA_b ", "ana_b"), ("@ana.bsky.social",
                                      "ana.bsky.social"), ("@105835", "105835"), ("@ünïcode", "ünïcode")])
def test_handle_keys(raw: str, key: str) -> None:
    assert validation.handle_key(raw) == key


@pytest.mark.parametrize("raw", ["", "@", "a b", "<script>", "a\"b", "a'b", "a`b", "a/b", "a\\b", "a\x00b",
                                 "a\u0085b", "x" * 201])
def test_bad_handles(raw: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validation.handle_key(raw)
    assert caught.value.errors[0]["field"] == "author.handle"


@pytest.mark.parametrize("text", ["\u202eRTL\u202c", "zero\u200bwidth", "tab\tand\nnewline", "<script>x</script>",
                                  "emoji 👩‍👩‍👧", " padded "])
def test_text_is_kept_exactly(text: str) -> None:
    assert validation.clean_text(text) == text


@pytest.mark.parametrize("text, message", [("a\x00b", "NUL"), ("a\x07b", "control"), ("  \n", "empty"),
                                           ("a\ud800b", "surrogate")])
def test_bad_text(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validation.clean_text(text)
    assert caught.value.errors[0]["field"] == "text"
    assert message in caught.value.errors[0]["message"]


@pytest.mark.parametrize("raw, token", [("X", "x"), (" bluesky ", "bluesky"), ("my-forum.example", "my-forum.example")])
def test_platform_tokens(raw: str, token: str) -> None:
    assert validation.platform_token(raw) == token


@pytest.mark.parametrize("raw", ["", "1x", "x y", "<x>", "x" * 33])
def test_bad_platforms(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        validation.platform_token(raw)


def test_naive_time_is_utc_and_the_far_future_is_refused() -> None:
    assert validation.timestamp(dt.datetime(2026, 1, 1), now=NOW).tzinfo == dt.timezone.utc
    offset = dt.datetime(2026, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert validation.timestamp(offset, now=NOW) == dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    assert validation.timestamp(NOW + dt.timedelta(hours=23), now=NOW)
    with pytest.raises(ValidationFailed):
        validation.timestamp(NOW + dt.timedelta(days=2), now=NOW)


def test_validate_names_nested_fields() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate({"platform": "x", "external_id": "1", "text": "hi", "created_at": "2026-01-01T00:00:00Z",
                  "author": {"handle": 5}}, now=NOW)
    assert caught.value.errors[0]["field"] == "author.handle"
    with pytest.raises(ValidationFailed) as caught:
        validate(MentionIn(platform="x", external_id="  ", text="hi", created_at=NOW, author=AuthorIn(handle="a")),
                 now=NOW)
    assert caught.value.errors[0]["field"] == "external_id"
