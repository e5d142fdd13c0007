"""Finding what an approved reply promises: the policy's ``[promises]`` patterns, and the model's reading.

Patterns run at approval in the approving transaction (under a millisecond per reply, see
``bench/bench_memory.py``); the model's structured classification runs later as a job, when a model is
configured, and may only name words that are really in the reply and kinds the policy knows.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import regex

from assistant.policy import Policy
from assistant.policy.checks import PATTERN_TIMEOUT
from assistant.policy.loader import promise_kinds_of

_SENTENCE_END = regex.compile(r"[.!?\n]+")
WORDS_MAX = 300


@dataclass(frozen=True)
class FoundPromise:
    kind: str
    words: str
    """The sentence of the reply that makes the promise."""
    due_after: dt.timedelta
    source: str
    """``pattern`` or ``model``."""


def find_promises(policy: Policy, text: str) -> list[FoundPromise]:
    """One promise per kind the reply makes, with the sentence that makes it, in the order of the kinds."""
    found: list[FoundPromise] = []
    for kind in promise_kinds_of(policy):
        for pattern in kind.patterns:
            try:
                match = pattern.search(text, timeout=PATTERN_TIMEOUT)
            except TimeoutError:
                match = None
            if match is not None:
                found.append(FoundPromise(kind.name, sentence_around(text, match.start(), match.end()),
                                          kind.due_after, "pattern"))
                break
    return found


def sentence_around(text: str, start: int, end: int) -> str:
    """The sentence that holds [start, end): from the previous sentence end to the next one."""
    before = [m.end() for m in _SENTENCE_END.finditer(text, 0, start)]
    begin = before[-1] if before else 0
    after = _SENTENCE_END.search(text, end)
    stop = after.end() if after else len(text)
    return text[begin:stop].strip()[:WORDS_MAX]


def model_promises(policy: Policy, reply_text: str, answer: str) -> list[FoundPromise]:
    """The model's answer (``{"promises": [{"kind": ..., "words": ...}]}``) as promises: only kinds the policy
    knows, only words found in the reply (case and spacing aside). Anything else in the answer is ignored."""
    try:
        data = json.loads(_json_part(answer))
    except ValueError:
        return []
    items = data.get("promises") if isinstance(data, dict) else None
    kinds = {kind.name: kind for kind in promise_kinds_of(policy)}
    flat_reply = " ".join(reply_text.split()).casefold()
    found: dict[str, FoundPromise] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind, words = kinds.get(str(item.get("kind", ""))), " ".join(str(item.get("words", "")).split())
        if kind is None or not words or words.casefold() not in flat_reply or kind.name in found:
            continue
        found[kind.name] = FoundPromise(kind.name, words[:WORDS_MAX], kind.due_after, "model")
    return list(found.values())


def _json_part(answer: str) -> str:
    """Models wrap JSON in prose or code fences now and then: the outermost {...}."""
    start, end = answer.find("{"), answer.rfind("}")
    return answer[start:end + 1] if 0 <= start < end else answer


__all__ = ["FoundPromise", "find_promises", "model_promises", "sentence_around"]
