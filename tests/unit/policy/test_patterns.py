"""Patterns with a time limit, escalation and opt-out."""

import time
from pathlib import Path

import pytest

from assistant.policy import PATTERN_TIMEOUT, check_text, load_policy, match_escalation, matches_opt_out

DEMO = load_policy((Path(__file__).parents[3] / "assistant/policy/demo_policy.toml").read_text())
CATASTROPHIC = "(a|aa)+$"   # exponential in `regex`; the classic (a+)+$ is optimised away there


def test_a_catastrophic_pattern_times_out_and_other_rules_still_report():
    policy = load_policy(f"""
[rules]
banned_patterns = ['{CATASTROPHIC}', '(?i)\\bguarantee\\b']
banned_phrases = ["valued customer"]
""")
    text = "We guarantee it, valued customer " + "a" * 40 + "b"
    started = time.perf_counter()
    findings = check_text(policy, text, platform="x")
    assert time.perf_counter() - started < 10 * PATTERN_TIMEOUT
    assert [(f.rule, f.severity, f.start, f.end) for f in findings] == [
        ("pattern_timeout", "block", 0, len(text)),
        ("banned_pattern", "block", 3, 12),
        ("banned_phrase", "block", 17, 32),
    ]
    assert CATASTROPHIC in findings[0].message and "in time" in findings[0].message


@pytest.mark.parametrize(("texts", "expected"), [
    (["I'm calling my lawyer"], "legal"),
    (["fine", "I burned my hand on the lid"], "safety"),
    (["My lawyer says the coffee burned me"], "legal"),   # the first rule in the file wins
    (["The flat white was cold"], None),
    ([], None),
])
def test_match_escalation(texts, expected):
    assert match_escalation(DEMO, texts) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Please STOP replying to me", True),
    ("just leave me alone", True),
    ("how do I unsubscribe?", True),
    ("stop by the shop tomorrow", False),
    ("Don't leave me alone with this bug", True),   # patterns are literal: the admin decides the wording
])
def test_matches_opt_out(text, expected):
    assert matches_opt_out(DEMO, text) is expected


def test_a_pattern_out_of_time_escalates_but_never_opts_out():
    policy = load_policy(f"""
[[escalate]]
name = "slow"
patterns = ['{CATASTROPHIC}']
[opt_out]
patterns = ['{CATASTROPHIC}']
""")
    text = "a" * 40 + "b"
    assert match_escalation(policy, [text]) == "slow"
    assert matches_opt_out(policy, text) is False
