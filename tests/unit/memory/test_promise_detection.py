"""Finding promises in a reply: the shipped patterns as a table, policy [promises] and [service] parsing, and
what of the model's answer is believed."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.policy import PolicyFileError, default_policy, load_policy
from assistant.promises.detection import find_promises, model_promises


@pytest.mark.parametrize(("text", "kinds"), [
    ("Hi Ana, we'll get back to you by Friday.", ["get_back"]),
    ("I will follow up once I hear from the courier.", ["get_back"]),
    ("We’ll keep you posted!", ["get_back"]),
    ("Let me check with the team.", ["check"]),
    ("We're looking into it right now.", ["check"]),
    ("I'll email you the label tonight.", ["email"]),
    ("DM us your order number and we'll sort it out.", ["dm"]),
    ("I'll check and we'll get back to you.", ["get_back", "check"]),
    ("It shipped this morning, enjoy!", []),
    ("Did you check your spam folder?", []),
    ("You'll get back your deposit.", []),
])
def test_the_shipped_patterns(text: str, kinds: list[str]) -> None:
    assert sorted(p.kind for p in find_promises(default_policy(), text)) == sorted(kinds)


def test_the_promise_keeps_its_sentence() -> None:
    [promise] = find_promises(default_policy(), "Sorry Ana! The parcel is late. We'll get back to you tomorrow. Bye")
    assert promise.words == "We'll get back to you tomorrow." and promise.due_after == dt.timedelta(hours=24)


def test_a_policy_with_its_own_kinds_and_max_wait() -> None:
    policy = load_policy('[service]\nmax_wait = "1d12h"\n\n[promises.callback]\npatterns = [\'(?i)call you\']\n'
                         'due_after = "90m"\n')
    assert policy.max_wait == dt.timedelta(hours=36)
    [promise] = find_promises(policy, "We'll call you. We'll get back to you.")
    assert promise.kind == "callback" and promise.due_after == dt.timedelta(minutes=90)


def test_a_policy_without_promises_keeps_the_shipped_kinds_and_an_empty_table_has_none() -> None:
    assert find_promises(load_policy(""), "We'll get back to you.")[0].kind == "get_back"
    assert find_promises(load_policy("[promises]\n"), "We'll get back to you.") == []
    assert load_policy("").max_wait == dt.timedelta(hours=4)


@pytest.mark.parametrize(("source", "message"), [
    ('[service]\nmax_wait = "soon"', 'policy.toml:2: service.max_wait: expected a positive duration'),
    ('[service]\nmax_wait = "0h"', 'policy.toml:2: service.max_wait: expected a positive duration'),
    ('[promises.x]\npatterns = ["a"]', "policy.toml:1: promises.x: missing due_after"),
    ('[promises.x]\npatterns = ["("]\ndue_after = "1h"', "policy.toml:2: promises.x.patterns[0]: regular expression"),
    ('[promises.Bad-Name]\npatterns = ["a"]\ndue_after = "1h"', "promises.Bad-Name: a kind's name is"),
    ('[promises.x]\npatterns = ["a"]\ndue_after = "1h"\nsoon = 1', "promises.x.soon: unknown key"),
    ('[service]\nmaxwait = "1h"', "service.maxwait: unknown key; did you mean max_wait?"),
])
def test_bad_promise_and_service_tables_are_named_with_their_line(source: str, message: str) -> None:
    with pytest.raises(PolicyFileError) as error:
        load_policy(source)
    assert any(message in m for m in error.value.messages), error.value.messages


REPLY = "Hi Ana! I'll ask the courier what happened and I will write back here on Monday."


@pytest.mark.parametrize(("answer", "expected"), [
    ('{"promises": [{"kind": "get_back", "words": "I will write back here on Monday"}]}',
     [("get_back", "I will write back here on Monday")]),
    ('Sure! ```json\n{"promises": [{"kind": "check", "words": "I\'ll  ask the courier"}]}\n```',
     [("check", "I'll ask the courier")]),
    ('{"promises": [{"kind": "refund", "words": "I\'ll ask the courier"}]}', []),          # unknown kind
    ('{"promises": [{"kind": "check", "words": "we will refund you"}]}', []),             # words not in the reply
    ('{"promises": "none"}', []),
    ("not json at all", []),
    ('{"promises": []}', []),
])
def test_only_known_kinds_and_real_words_of_the_model_answer_are_believed(answer, expected) -> None:
    found = model_promises(default_policy(), REPLY, answer)
    assert [(p.kind, p.words) for p in found] == expected
    assert all(p.source == "model" for p in found)
