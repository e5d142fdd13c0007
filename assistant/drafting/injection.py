"""Flags for mention text that reads like an instruction to the model rather than a message to us.

The prompt already treats mentions as quoted data; these flags are for the reviewer, who should look
twice at a draft written for someone trying to steer the model. A flag never blocks anything, so the
patterns lean towards catching attempts, yet stay narrow enough that ordinary complaints pass unflagged
("you are now charging me twice" is not a role change).

Patterns are written with single spaces; each space matches any run of whitespace, including line
breaks and zero-width characters, so case and spacing games do not hide an instruction.
"""

from __future__ import annotations

import re

_GAP = r"(?:[\s\u200b\u200c\u200d\u2060\ufeff]+)"
_ROLE = r"(?:assistant|ai|bot|chatbot|model|llm|persona|character|agent|dan|admin(?:istrator)?|developer|hacker)"
_ASK = r"(?:reveal|print|show|display|repeat|output|leak|dump|tell me|give me|what (?:is|are|was|were))"
_INSTRUCTIONS = r"(?:instructions?|rules|prompts?|directions|guidelines|guardrails|programming)"


def _pattern(readable: str) -> re.Pattern[str]:
    return re.compile(readable.replace(" ", _GAP), re.IGNORECASE)


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (_pattern(rf"\b(?:ignore|disregard|forget|override|bypass) (?:(?:all|any|of|the|your|these|those|"
              rf"previous|prior|above|earlier|preceding|system|initial|original) ){{0,4}}{_INSTRUCTIONS}\b"),
     "asks the model to ignore its instructions"),
    (_pattern(rf"\b{_ASK} (?:me )?(?:your|the) (?:(?:system|initial|original|hidden|secret|full) )*prompt\b"
              rf"|\b{_ASK} (?:me )?(?:your|the) (?:system|initial|original|hidden|secret) (?:instructions|message)\b"
              r"|\b(?:reveal|print|repeat|output|leak|dump) (?:your (?:instructions|rules)|(?:everything|all|the text) above)\b"),
     "asks the model to reveal its prompt"),
    (_pattern(rf"\b(?:you are|you're) now (?:(?:an?|my|the|in) )?(?:\w+ ){{0,2}}?{_ROLE}\b"
              rf"|\b(?:act|behave|roleplay|role-play) as (?:if you (?:are|were) )?(?:an?|my|the) (?:\w+ ){{0,2}}?{_ROLE}\b"
              r"|\bpretend (?:to be|you are|that you are)\b"
              r"|\b(?:from now on|henceforth),? you (?:are|will|must|shall)\b"
              r"|\b(?:developer|god|jailbreak|dan|unrestricted) mode\b"),
     "tries to give the model a new role"),
    (_pattern(r"\b(?:post|tweet|retweet|share|publish|include|reply with) (?:this|that|my|the following) "
              r"(?:link|url|website|site)\b"
              r"|\b(?:post|tweet|share|publish|include|reply with) (?:this|the following) ?:? ?https?://"),
     "asks the model to post or share a link"),
    (re.compile(r"^[ \t]*(?:system|assistant|developer)[ \t]*:"
                r"|<\|im_(?:start|end)\|>|\[/?INST\]|<</?SYS>>|###[ \t]*(?:system|instructions?)\b",
                re.IGNORECASE | re.MULTILINE),
     "contains a chat role marker"),
    (_pattern(r"\bnew (?:system )?instructions? ?:"), "announces new instructions"),
]


def injection_flags(text: str) -> list[dict[str, object]]:
    """Each stretch of ``text`` that reads like an instruction to the model, in reading order."""
    flags: list[dict[str, object]] = []
    for pattern, message in _PATTERNS:
        for found in pattern.finditer(text):
            start = found.start() + len(found.group()) - len(found.group().lstrip())
            flags.append({"kind": "prompt_injection", "start": start, "end": found.end(),
                          "message": f"Reads like an instruction to the model: {message}."})
    return sorted(flags, key=lambda flag: (flag["start"], flag["end"]))  # type: ignore[return-value]


_MARKUP = re.compile(r"[<>]|https?://|www\.", re.IGNORECASE)


def name_flags(display_name: str) -> list[dict[str, object]]:
    """Flags for a display name, which the public writes too: instructions to the model, markup or links.
    The prompt quotes the name as data and the fallback greets only with a plain first name; these tell the
    reviewer why to look twice."""
    flags = [dict(flag, field="author.display_name",
                  message=str(flag["message"]).replace("Reads like", "Their display name reads like"))
             for flag in injection_flags(display_name)]
    found = _MARKUP.search(display_name)
    if found:
        flags.append({"kind": "prompt_injection", "field": "author.display_name", "start": found.start(),
                      "end": found.end(), "message": "Their display name holds markup or a link."})
    return flags
