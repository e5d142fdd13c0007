"""Length as each platform counts it: exact numbers for the cases that differ between platforms."""

import pytest
from twitter_text import parse_tweet

from assistant.policy import check_text, count_length, effective_limit, load_policy, platform_limit

FAMILY = "👨\u200d👩\u200d👧\u200d👦"   # 7 code points, 11 UTF-16 units, 25 UTF-8 bytes
FLAG = "🇫🇷"
THUMBS = "👍🏽"
PHOENIX = "🐦\u200d🔥"   # Unicode 15.1: twitter-text-parser 3.0 alone counts it 5
DECOMPOSED = "e\u0301"   # é as e + combining acute: NFC makes it one character
LINK = "https://example.com/a/very/long/path/here"   # 41 characters
BARE_LINK = "example.com/x"   # 13 characters


@pytest.mark.parametrize(("platform", "text", "expected"), [
    ("x", "hello", 5),
    ("x", FAMILY, 2),
    ("x", FLAG, 2),
    ("x", THUMBS, 2),
    ("x", PHOENIX, 2),
    ("x", "日本語", 6),
    ("x", "한국어", 6),
    ("x", DECOMPOSED, 1),
    ("x", "é", 1),
    ("x", LINK, 23),
    ("x", BARE_LINK, 23),
    ("x", f"hi {LINK} 日", 3 + 23 + 3),
    ("twitter", FAMILY, 2),
    ("bluesky", FAMILY, 1),
    ("bluesky", FLAG + THUMBS, 2),
    ("bluesky", DECOMPOSED, 1),
    ("bluesky", "日本語", 3),
    ("bluesky", LINK, 41),
    ("mastodon", LINK, 23),
    ("mastodon", BARE_LINK, 13),
    ("mastodon", "@ana@mastodon.example hi", 7),
    ("mastodon", FAMILY + DECOMPOSED, 2),
    ("threads", FAMILY, 25),
    ("threads", FLAG, 8),
    ("threads", DECOMPOSED, 2),
    ("threads", "日本語", 3),
    ("instagram", FAMILY, 11),
    ("linkedin", THUMBS, 4),
    ("facebook", "é", 1),
    ("somewhere", FAMILY, 7),
])
def test_count_length(platform, text, expected):
    assert count_length(platform, text) == expected


@pytest.mark.parametrize("text", [
    "hello", "english text 日本語 😷 https://example.com", "line\r\nbreak", DECOMPOSED, FAMILY, FLAG, THUMBS,
    "visit x.com/help or www.example.org", "©™ ‼", "𝐁𝐨𝐥𝐝", "a" * 300, "— “quoted” …",
])
def test_x_length_agrees_with_twitter_text_where_its_emoji_table_is_current(text):
    assert count_length("x", text) == parse_tweet(text).weightedLength


@pytest.mark.parametrize(("platform", "expected"), [
    ("x", 280), ("twitter", 280), ("X", 280), ("bluesky", 300), ("mastodon", 500), ("threads", 500),
    ("instagram", 2200), ("linkedin", 1250), ("facebook", 8000), ("somewhere", 1234),
])
def test_platform_limit(platform, expected):
    assert platform_limit(platform, default_max_length=1234) == expected


def test_a_policy_tightens_the_limit_on_its_platform_only():
    policy = load_policy("[platforms.twitter]\nmax_length = 200\n[platforms.somewhere]\nmax_length = 50\n")
    assert effective_limit(policy, "x") == 200
    assert effective_limit(policy, "bluesky") == 300
    assert effective_limit(policy, "somewhere", default_max_length=2000) == 50
    assert effective_limit(policy, "elsewhere", default_max_length=2000) == 2000


def test_overflow_span_starts_where_the_text_stops_fitting():
    policy = load_policy("")
    text = "a" * 278 + FAMILY + "b"   # 278 + 2 = 280 fits; the "b" is over
    [finding] = check_text(policy, text, platform="x")
    assert (finding.rule, finding.start, finding.end) == ("max_length", 278 + len(FAMILY), len(text))
    assert finding.message == "Too long for x: 281 of 280 as x counts"
    assert check_text(policy, text, platform="bluesky") == []
