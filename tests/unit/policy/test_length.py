"""Length as each platform counts it: exact numbers for the cases that differ between platforms."""

import pytest

from assistant.policy import check_text, count_length, effective_limit, load_policy, platform_limit

FAMILY = "👨\u200d👩\u200d👧\u200d👦"   # 7 code points, 11 UTF-16 units, 25 UTF-8 bytes
FLAG = "🇫🇷"
THUMBS = "👍🏽"
PHOENIX = "🐦\u200d🔥"   # Unicode 15.1: twitter-text 3.0's own emoji table counts it 5; X counts 2
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


# X's weighted length as twitter-text v3's reference implementation and its conformance cases (validate.yml:
# lengths, urls, urls_without_protocol) count it: links under real top-level domains 23, "ftp:" and IP links
# and reserved domains as plain text, CJK and characters beyond the BMP 2, a link ending at CJK or punctuation.
@pytest.mark.parametrize(("text", "expected"), [
    ("hello", 5),
    ("english text 日本語 😷 https://example.com", 46),
    ("line\r\nbreak", 10),
    ("é", 1),
    ("👨‍👩‍👧‍👦", 2),
    ("🇫🇷", 2),
    ("👍🏽", 2),
    ("visit x.com/help or www.example.org", 56),
    ("©™ ‼", 7),
    ("𝐁𝐨𝐥𝐝", 8),
    ("a" * 300, 300),
    ("— “quoted” …", 13),
    ("This is a test.", 15),
    ("http://test.com", 23),
    ("https://test.com", 23),
    ("test.com", 23),
    ("Test https://test.com test https://test.com test.com test", 86),
    ("𐀀􏿿", 4),
    ("저찀쯿쿿", 8),
    ("H🐱☺", 5),
    ("t.co", 23),
    ("foo.co.jp", 23),
    ("foo.jp", 23),
    ("foo.jp/path", 23),
    ("example.com/path/to/resource?search=foo&lang=en", 23),
    ("ftp://www.example.com/", 22),
    ("help.acme.example", 17),
    ("see acme.com/help.", 28),
    ("Node.js and e.g. this", 21),
    ("mail me at ana@acme.com", 23),
    ("@acme.com hi", 12),
    ("#acme.com", 9),
    ("http://192.168.0.1/index.html", 29),
    ("https://www.youtube.com/playlist?list=PL0ZPu8XSRTB7wZzn0mLHMvyzVFeRxbWn-", 23),
    ("(see https://acme.com/x)", 29),
    ("acme.COM", 23),
    ("WWW.ACME.COM/Help", 23),
    ("http://☃.net/", 23),
    ("sub.domain.tv", 23),
    ("acme.tv", 23),
    ("acme.zip", 23),
    ("x.com", 23),
    ("text—dash ‘q’", 13),
    ("′‷‸", 4),
    ("ᄀᇿሀ", 6),
    ("https://acme.com:8080/a", 23),
    ("https://acme.com,then", 28),
    ("$acme.com", 9),
    ("acme.com's", 25),
    ("a\tb", 3),
    ("emoji 1️⃣ #️⃣", 11),
    ("🏳️‍🌈", 2),
    ("日本語テキスト https://example.jp/x", 38),
    ("https://example.com/日本", 27),
])
def test_x_length_matches_twitter_text(text, expected):
    assert count_length("x", text) == expected


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
