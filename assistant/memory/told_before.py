"""What we told them before: findings on a draft that re-asks what the person already told us (their order
number, device, city, e-mail) or contradicts an earlier reply of ours (a refund promised, now refused), each
with the earlier message it conflicts with, so the reviewer can open it.

Pattern-based, with patterns of our own (bounded, no admin input, so no time limit is needed), under a
millisecond per draft (see ``bench/bench_memory.py``); when a model is configured and
the brand's policy sets ``[service] model_judges_told_before = true``, the model also judges the draft
against our earlier replies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import regex

from assistant.policy import WARN

SNIPPET = 160
ASK = r"(?:what(?:'|’)?s|what is|what was|which|where|can you (?:send|share|give|tell|confirm)|could you (?:send|share|give|tell|confirm)|please (?:send|share|confirm|tell us|give us|DM)|(?:DM|message|send) us|tell us|let us know|share)\b[^.?!\n]{0,40}?"
_ASKS = {
    "order number": regex.compile(ASK + r"\b(?:your |the )?order(?: number| no\.?| #| id| reference)\b", regex.I),
    "device": regex.compile(ASK + r"\b(?:your |the |which )?(?:device|phone|model|handset|laptop)\b", regex.I),
    "city": regex.compile(ASK + r"\b(?:your |the |which )?(?:city|town|location|based|live)\b", regex.I),
    "e-mail": regex.compile(ASK + r"\b(?:your |the )?e-?mail(?: address)?\b", regex.I),
}
"""A draft asking for a detail, by the detail's name."""
TOLD = {
    "order number": regex.compile(r"(?:\border\b(?:\s*(?:number|no\.?|#|id|ref(?:erence)?))?\s*(?:is\s*)?[:#]?\s*|#)"
                                  r"(?P<value>[A-Z]{0,4}-?\d[\dA-Z-]{2,})", regex.I),
    "device": regex.compile(r"\b(?P<value>(?:iphone|ipad|pixel|galaxy|macbook|surface|kindle|xperia|oneplus)"
                            r"(?:\s?(?:pro|max|plus|mini|ultra|s|se|\d{1,2}[a-z]?)){0,3})\b", regex.I),
    "city": regex.compile(r"\b(?:[Ii](?:'m|’m| am) (?:in|from|based in)|[Ii] live in|here in|living in)\s+"
                          r"(?P<value>\p{Lu}[\p{L}-]+(?:\s\p{Lu}[\p{L}-]+)?)"),
    "e-mail": regex.compile(r"(?P<value>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"),
}
"""The person telling us that detail."""


@dataclass(frozen=True)
class _Topic:
    name: str
    granted: regex.Pattern
    refused: regex.Pattern


def _topic(name: str, noun: str, verbs: str) -> _Topic:
    we = r"\b(?:we|i)(?:'ll|’ll| will| can| have| are going to| 've| ’ve)?\s+(?:happily\s+|gladly\s+)?"
    granted = regex.compile(rf"{we}(?:{verbs})\b|\b(?:your|a|the) {noun}\b[^.?!\n]{{0,30}}\b(?:is on (?:its|the) way|"
                            rf"has been (?:issued|sent|approved|processed)|is approved)|(?<!\bnot\s)(?<!n(?:'|’)t\s)\beligible for an? {noun}", regex.I)
    refused = regex.compile(rf"\b(?:can(?:'|’)?t|cannot|won(?:'|’)?t|will not|unable to|not able to)\s+(?:{verbs})\b|"
                            rf"\b(?:not|isn(?:'|’)?t|aren(?:'|’)?t) eligible for an? {noun}|\bno {noun}s?\b", regex.I)
    return _Topic(name, granted, refused)


_TOPICS = (
    _topic("refund", "refund", r"refund(?: you| it| the \w+)?|issue (?:you )?a refund|send (?:you )?a refund"),
    _topic("replacement", "replacement", r"replace (?:it|them|the \w+)|send (?:you )?a replacement"),
    _topic("exchange", "exchange", r"exchange (?:it|them|the \w+)"),
    _topic("repair under warranty", "repair", r"repair (?:it|them|the \w+)(?: for free| under warranty)?"),
)
"""Things an earlier reply may have granted that a later draft may refuse, or the other way round."""


@dataclass(frozen=True)
class Earlier:
    """One earlier message of the person's history: ``mention`` (from them) or ``reply`` (from us)."""

    id: int | None
    kind: str
    text: str
    at: Any


def told_before(draft: str, history: Sequence[Earlier], *, person_id: int) -> list[dict[str, Any]]:
    """The draft's told-before findings against the person's earlier messages (newest first), each with the
    newest earlier message it conflicts with."""
    findings: list[dict[str, Any]] = []
    for detail, ask in _ASKS.items():
        asked = ask.search(draft)
        if asked is None:
            continue
        for item in history:
            told = TOLD[detail].search(item.text) if item.kind == "mention" else None
            if told is not None:
                findings.append(_finding("told_before.reask", f"They already told us their {detail} "
                                         f"(“{told['value']}”): don't ask again", asked, item, person_id))
                break
    for topic in _TOPICS:
        now_granted = topic.granted.search(draft)
        now_refused = topic.refused.search(draft)
        if bool(now_granted) == bool(now_refused):
            continue
        for item in history:
            if item.kind != "reply":
                continue
            before = topic.refused if now_granted else topic.granted
            if before.search(item.text) and not (topic.granted if now_granted else topic.refused).search(item.text):
                said = "refused" if now_granted else "promised"
                findings.append(_finding("told_before.contradiction",
                                         f"An earlier reply {said} the {topic.name}; this draft says the opposite",
                                         now_granted or now_refused, item, person_id))
                break
    return findings


def _finding(rule: str, message: str, match: regex.Match, item: Earlier, person_id: int) -> dict[str, Any]:
    return {"rule": rule, "severity": WARN, "message": message, "start": match.start(), "end": match.end(),
            "earlier": {"interaction_id": item.id, "person_id": person_id, "kind": item.kind,
                        "at": item.at.isoformat() if hasattr(item.at, "isoformat") else str(item.at),
                        "text": item.text[:SNIPPET]}}


def judge_messages(draft: str, replies: Sequence[Earlier]) -> list[dict[str, str]]:
    """The model's question: does the draft contradict one of our earlier replies? (JSON answer)."""
    from assistant.model.templates import environment
    variables = {"draft": draft, "replies": [(n, r.text, r.at) for n, r in enumerate(replies, 1)]}
    return [{"role": "system", "content": environment.get_template("told_before.system.j2").render(variables)},
            {"role": "user", "content": environment.get_template("told_before.user.j2").render(variables)}]


def judged(answer: str, draft: str, replies: Sequence[Earlier], *, person_id: int) -> list[dict[str, Any]]:
    """The model's answer ``{"contradicts": <reply number or 0>, "why": "..."}`` as a finding (none if 0 or
    unreadable); the span is the whole draft, the earlier message the reply it names."""
    try:
        start, end = answer.find("{"), answer.rfind("}")
        data = json.loads(answer[start:end + 1])
        number = int(data.get("contradicts", 0))
    except (ValueError, TypeError, AttributeError):
        return []
    if not 1 <= number <= len(replies):
        return []
    why = " ".join(str(data.get("why", "")).split())[:200] or "the model judged it so"
    whole = regex.match(r"(?s).+", draft)
    assert whole is not None
    return [_finding("told_before.model", f"May contradict an earlier reply: {why}", whole, replies[number - 1],
                     person_id)]


JUDGED_REPLIES = 5


async def check_draft(text: str, history: Sequence[Any], *, person_id: int, model: Any = None) -> list[dict[str, Any]]:
    """The told-before findings of a draft against the loaded history (newest first, ``HistoryItem``s), and the
    model's judgement when ``model`` is given (the brand turned it on and a model is configured)."""
    from assistant.errors import ModelUnavailable
    earlier = [Earlier(item.id, item.kind, item.text, item.at) for item in history if item.kind != "note"]
    findings = told_before(text, earlier, person_id=person_id)
    replies = [item for item in earlier if item.kind == "reply"][:JUDGED_REPLIES]
    if model is not None and replies and not any(f["rule"] == "told_before.contradiction" for f in findings):
        try:
            answer = await model.complete(judge_messages(text, replies))
        except ModelUnavailable:
            return findings
        findings += judged(answer.text, text, replies, person_id=person_id)
    return findings


__all__ = ["TOLD", "Earlier", "check_draft", "judge_messages", "judged", "told_before"]
