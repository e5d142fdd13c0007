"""What a policy is once loaded, and what checking a text against it yields.

Everything here is immutable and pre-compiled at load time: a policy is loaded once per brand and
then checks many drafts, so the per-check work is only running the compiled patterns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import regex

BLOCK = "block"
WARN = "warn"


@dataclass(frozen=True)
class Finding:
    """One reason a draft breaks (block) or strains (warn) the policy, with the span the page underlines."""

    rule: str
    severity: str
    message: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message,
                "start": self.start, "end": self.end}


@dataclass(frozen=True)
class PhraseList:
    """Phrases matched case-insensitively as whole words, compiled into one alternation so a draft
    is scanned once however many phrases a brand lists."""

    phrases: tuple[str, ...]
    pattern: regex.Pattern | None

    def phrase_of(self, match: regex.Match) -> str:
        return self.phrases[int(match.lastgroup[1:])]


@dataclass(frozen=True)
class Rules:
    banned_phrases: PhraseList
    warn_phrases: PhraseList
    banned_patterns: tuple[regex.Pattern, ...]
    max_emojis: int | None
    max_hashtags: int | None
    allowed_link_domains: tuple[str, ...] | None   # None: links are allowed anywhere
    only_mention_author: bool


@dataclass(frozen=True)
class Escalation:
    """A kind of mention a human must answer themselves (legal threats, safety), never the model."""

    name: str
    patterns: tuple[regex.Pattern, ...]


@dataclass(frozen=True)
class PromiseKind:
    """A kind of promise a reply can make ("we'll get back to you"), found by its patterns, due after a while."""

    name: str
    patterns: tuple[regex.Pattern, ...]
    due_after: dt.timedelta


DEFAULT_MAX_WAIT = dt.timedelta(hours=4)


@dataclass(frozen=True)
class Example:
    """A policy test: this text on this platform should block, warn or pass."""

    line: int
    platform: str
    text: str
    expect: str
    author: str | None


@dataclass(frozen=True)
class ExampleResult:
    index: int
    line: int
    platform: str
    text: str
    expected: str
    actual: str
    ok: bool
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Policy:
    """A brand's tone rules, parsed and compiled. `hash` identifies the exact text a draft was checked against."""

    source: str
    source_name: str
    hash: str
    voice_description: str
    sign_off: str | None
    sign_off_pattern: regex.Pattern | None
    max_lengths: Mapping[str, int]      # per-platform tightening of the built-in limits
    rules: Rules
    escalations: tuple[Escalation, ...]
    opt_out: tuple[regex.Pattern, ...]
    examples: tuple[Example, ...]
    max_wait: dt.timedelta = DEFAULT_MAX_WAIT
    """``[service] max_wait``: a person waiting longer than this is overdue (left behind)."""
    promise_kinds: tuple[PromiseKind, ...] | None = None
    """``[promises]``; None when the file has none (the shipped default kinds apply, see ``promise_kinds_of``)."""
    model_judges_told_before: bool = False
    """``[service] model_judges_told_before``: let the model judge contradictions with earlier replies."""
