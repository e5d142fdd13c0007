"""Each rule and its edges, as a table: the rule id, severity and exact span of every finding."""

import pytest

from assistant.policy import Finding, check_text, has_blocking, load_policy

RULES = load_policy("""
[platforms.x]
max_length = 100

[rules]
banned_phrases = ["valued customer", "we apologize for any inconvenience", "!!!"]
warn_phrases = ["unfortunately"]
banned_patterns = ['(?i)\\bguarantee[ds]?\\b']
max_emojis = 1
max_hashtags = 1
allowed_link_domains = ["help.acme.example"]
only_mention_author = true
""")

SIGNED = load_policy('[voice]\nsign_off = "^{initials}"\n')


def at(text: str, piece: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(piece, start + 1)
    return start, start + len(piece)


def case(text, *expected, author="ana", platform="x", policy=RULES, id):
    """A row: the text and, for each expected finding, (rule, severity, piece of the text or span)."""
    spans = [(rule, severity, at(text, where) if isinstance(where, str) else where)
             for rule, severity, where in expected]
    return pytest.param(policy, text, platform, author, spans, id=id)


CASES = [
    case("Thanks for writing, Ana.", id="clean"),
    case("Thanks, Valued Customer.", ("banned_phrase", "block", "Valued Customer"), id="phrase-any-case"),
    case("our valued\n  customer", ("banned_phrase", "block", "valued\n  customer"), id="phrase-across-lines"),
    case("all valued customers", id="phrase-not-inside-longer-word"),
    case("a devalued customer", id="phrase-not-after-word-character"),
    case("valued customer, valued customer",
         ("banned_phrase", "block", (0, 15)), ("banned_phrase", "block", (17, 32)), id="phrase-each-occurrence"),
    case("Wow!!!", ("banned_phrase", "block", "!!!"), id="phrase-of-punctuation-needs-no-word-boundary"),
    case("Unfortunately it broke.", ("warn_phrase", "warn", "Unfortunately"), id="warn-phrase"),
    case("Guaranteed by Friday", ("banned_pattern", "block", "Guaranteed"), id="pattern"),
    case("Thanks 🎉", id="emojis-within-limit"),
    case("👨‍👩‍👧‍👦🇫🇷👍🏽", ("max_emojis", "block", "🇫🇷👍🏽"), id="emojis-each-sequence-counts-one"),
    case("Press 1️⃣ or #️⃣ now", ("max_emojis", "block", "#️⃣"), id="keycaps-are-emojis"),
    case("#one #two #three", ("max_hashtags", "block", "#two #three"), id="hashtags-over"),
    case("#one is #1", id="number-is-not-a-hashtag"),
    case("See https://help.acme.example/x", id="link-allowed"),
    case("See docs.help.acme.example/a", id="link-subdomain-allowed"),
    case("See https://evil.example now", ("link_domain", "block", "https://evil.example"), id="link-with-scheme"),
    case("See evil.example/x.", ("link_domain", "block", "evil.example/x"), id="link-without-scheme"),
    case("Try acme.com!", ("link_domain", "block", "acme.com"), id="bare-domain-known-tld"),
    case("Built on Node.js, e.g. here", id="not-links"),
    case("https://help.acme.example@evil.example/",
         ("link_domain", "block", "https://help.acme.example@evil.example/"), id="link-userinfo-trick"),
    case("help.acme.example.evil.com/x", ("link_domain", "block", "help.acme.example.evil.com/x"),
         id="link-lookalike-host"),
    case("@Ana thanks", id="mention-author-any-case"),
    case("@ana ask @bob", ("only_mention_author", "block", "@bob"), id="mention-other"),
    case("@ana thanks", ("only_mention_author", "block", "@ana"), author=None, id="mention-without-author"),
    case("@ana thanks", author="@ANA", id="author-with-at"),
    case("mail ana@acme.com", id="e-mail-is-no-mention-nor-link"),
    case("a" * 101, ("max_length", "block", (100, 101)), id="length-over-policy-limit"),
    case("日" * 51, ("max_length", "block", (50, 51)), id="length-cjk-weighs-two"),
    case("a" * 150, platform="bluesky", id="length-other-platform-builtin-limit"),
    case("Thanks ^JS", policy=SIGNED, id="sign-off"),
    case("Thanks ^JS \n", policy=SIGNED, id="sign-off-trailing-space"),
    case("Thanks ^js", ("sign_off", "block", (10, 10)), policy=SIGNED, id="sign-off-lowercase"),
    case("Thanks ^ABCD", ("sign_off", "block", (12, 12)), policy=SIGNED, id="sign-off-four-letters"),
    case("^JS thanks!", ("sign_off", "block", (11, 11)), policy=SIGNED, id="sign-off-not-at-end"),
]


@pytest.mark.parametrize(("policy", "text", "platform", "author", "expected"), CASES)
def test_rule(policy, text, platform, author, expected):
    findings = check_text(policy, text, platform=platform, author_handle=author)
    assert [(f.rule, f.severity, (f.start, f.end)) for f in findings] == expected


def test_messages_name_what_is_wrong():
    findings = check_text(RULES, "@bob thanks, valued customer 🎉🎉 https://evil.example", platform="x",
                          author_handle="ana")
    assert [f.message for f in findings] == [
        "Mentions @bob; a reply may mention only the person it answers (@ana)",
        'Banned phrase "valued customer"',
        "2 emojis; the policy allows at most 1",
        "Link to evil.example; links are only to help.acme.example",
    ]
    assert check_text(SIGNED, "Hi", platform="x")[0].message == \
        'Missing sign-off: end the reply with your initials like "^AB"'


def test_finding_to_dict_and_blocking():
    warn = Finding("warn_phrase", "warn", 'Phrase to avoid "sadly"', 0, 5)
    block = Finding("max_length", "block", "Too long", 3, 9)
    assert warn.to_dict() == {"rule": "warn_phrase", "severity": "warn", "message": 'Phrase to avoid "sadly"',
                              "start": 0, "end": 5}
    assert not has_blocking([warn])
    assert has_blocking([warn, block])
    assert not has_blocking([])
