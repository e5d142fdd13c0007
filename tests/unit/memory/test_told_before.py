"""What we told them before: re-asking what they told us, contradicting what we replied, as a table."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.memory.told_before import Earlier, judged, told_before

AT = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
HISTORY = [
    Earlier(11, "reply", "Good news: we'll refund you in full by Friday.", AT),
    Earlier(10, "mention", "My order #A-44718 never came. I'm in Lisbon, writing from my iPhone 14 Pro, ana@example.org", AT),
]


@pytest.mark.parametrize(("draft", "rule", "value"), [
    ("Could you send us your order number please?", "told_before.reask", "A-44718"),
    ("What's your order number?", "told_before.reask", "A-44718"),
    ("Which city are you in?", "told_before.reask", "Lisbon"),
    ("Can you tell us which device you use?", "told_before.reask", "iPhone 14 Pro"),
    ("Please share your e-mail address.", "told_before.reask", "ana@example.org"),
    ("Sorry, we can't refund this one.", "told_before.contradiction", None),
    ("You're not eligible for a refund, I'm afraid.", "told_before.contradiction", None),
])
def test_findings(draft: str, rule: str, value: str | None) -> None:
    [finding] = told_before(draft, HISTORY, person_id=7)
    assert finding["rule"] == rule and finding["severity"] == "warn"
    assert 0 <= finding["start"] < finding["end"] <= len(draft)
    earlier = finding["earlier"]
    assert earlier["person_id"] == 7 and earlier["interaction_id"] == (10 if rule.endswith("reask") else 11)
    if value:
        assert value in finding["message"]


@pytest.mark.parametrize("draft", [
    "Thanks Ana, it arrives Monday.",
    "We'll refund it today.",                          # agrees with what we said
    "Could you send us your order number?",            # ...when they never told us: see below
])
def test_no_finding_when_nothing_conflicts(draft: str) -> None:
    history = HISTORY if "order number" not in draft else [Earlier(1, "mention", "It never came", AT)]
    assert told_before(draft, history, person_id=7) == []


def test_what_we_said_ourselves_is_not_what_they_told_us() -> None:
    ours = [Earlier(1, "reply", "Your order #B-9921 ships today", AT)]
    assert told_before("What's your order number?", ours, person_id=1) == []


@pytest.mark.parametrize(("answer", "count"), [
    ('{"contradicts": 1, "why": "we said Friday, now Monday"}', 1),
    ('{"contradicts": 0, "why": ""}', 0),
    ('{"contradicts": 9}', 0),
    ("no idea", 0),
    ('{"contradicts": "x"}', 0),
])
def test_the_model_judgement_is_read_strictly(answer: str, count: int) -> None:
    found = judged(answer, "It arrives Monday.", [HISTORY[0]], person_id=3)
    assert len(found) == count
    if found:
        assert found[0]["rule"] == "told_before.model" and found[0]["earlier"]["interaction_id"] == 11
