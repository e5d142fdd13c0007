"""Checking a text against a policy: every rule, each finding with the span it is about.

Patterns come from admins and run on text from strangers, so each runs with a time limit: a pattern
that backtracks catastrophically costs one finding and at most PATTERN_TIMEOUT, never a stuck worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import regex

from assistant.policy.entities import Span, find_emojis, find_hashtags, find_links, find_mentions
from assistant.policy.length import canonical_platform, count_length, fitting_end, platform_limit
from assistant.policy.model import BLOCK, WARN, ExampleResult, Finding, PhraseList, Policy

PATTERN_TIMEOUT = 0.05   # seconds per pattern per text


def effective_limit(policy: Policy, platform: str, default_max_length: int = 2000) -> int:
    """The platform's own limit, or the policy's tighter one."""
    platform = canonical_platform(platform)
    builtin = platform_limit(platform, default_max_length)
    return min(builtin, policy.max_lengths.get(platform, builtin))


def check_text(policy: Policy, text: str, *, platform: str, author_handle: str | None = None,
               default_max_length: int = 2000) -> list[Finding]:
    """Every finding for `text` as a reply on `platform` to `author_handle`, in text order."""
    rules = policy.rules
    findings = [
        *_phrases(rules.banned_phrases, text, BLOCK, "banned_phrase", "Banned phrase"),
        *_phrases(rules.warn_phrases, text, WARN, "warn_phrase", "Phrase to avoid"),
        *_patterns(rules.banned_patterns, text),
        *_too_many("max_emojis", "emoji", rules.max_emojis, text, find_emojis),
        *_too_many("max_hashtags", "hashtag", rules.max_hashtags, text, find_hashtags),
        *_links(rules.allowed_link_domains, text),
        *(_mentions(author_handle, text) if rules.only_mention_author else ()),
        *_sign_off(policy, text),
        *_length(text, platform, effective_limit(policy, platform, default_max_length)),
    ]
    return sorted(findings, key=lambda finding: (finding.start, finding.end, finding.rule))


def has_blocking(findings: Iterable[Finding]) -> bool:
    return any(finding.severity == BLOCK for finding in findings)


def _search(pattern: regex.Pattern, text: str) -> bool | None:
    """Whether the pattern occurs in the text; None when it could not tell in time."""
    try:
        return pattern.search(text, timeout=PATTERN_TIMEOUT) is not None
    except TimeoutError:
        return None


def match_escalation(policy: Policy, texts: list[str]) -> str | None:
    """The first `[[escalate]]` rule any text matches. A pattern that runs out of time counts as a
    match: when unsure, a human writes the reply."""
    for escalation in policy.escalations:
        if any(_search(pattern, text) is not False for pattern in escalation.patterns for text in texts):
            return escalation.name
    return None


def matches_opt_out(policy: Policy, text: str) -> bool:
    """Whether the person asked us to stop. A pattern that runs out of time does not count: skipping
    someone for good needs a clear request, while a needless draft still meets a human reviewer."""
    return any(_search(pattern, text) for pattern in policy.opt_out)


def _phrases(phrases: PhraseList, text: str, severity: str, rule: str, label: str) -> Iterator[Finding]:
    if phrases.pattern is None:
        return
    for match in phrases.pattern.finditer(text):
        yield Finding(rule, severity, f'{label} "{phrases.phrase_of(match)}"', match.start(), match.end())


def _patterns(patterns: tuple[regex.Pattern, ...], text: str) -> Iterator[Finding]:
    for pattern in patterns:
        try:
            matches = list(pattern.finditer(text, timeout=PATTERN_TIMEOUT))
        except TimeoutError:
            yield Finding("pattern_timeout", BLOCK, f"The banned pattern {pattern.pattern} could not be "
                          f"checked in time, so check this reply by hand", 0, len(text))
            continue
        for match in matches:
            yield Finding("banned_pattern", BLOCK, f'Banned wording "{match.group()}" (pattern '
                          f'{pattern.pattern})', match.start(), match.end())


def _too_many(rule: str, noun: str, allowed: int | None, text: str, find) -> Iterator[Finding]:
    """One finding covering every item past the allowed number."""
    if allowed is None:
        return
    found: list[Span] = find(text)
    if len(found) > allowed:
        plural = noun if len(found) == 1 else f"{noun}s"
        limit = f"at most {allowed}" if allowed else "none"
        yield Finding(rule, BLOCK, f"{len(found)} {plural}; the policy allows {limit}",
                      found[allowed].start, found[-1].end)


def _links(allowed: tuple[str, ...] | None, text: str) -> Iterator[Finding]:
    if allowed is None:
        return
    for link in find_links(text):
        host = link.value.lower()
        if not any(host == domain or host.endswith(f".{domain}") for domain in allowed):
            where = f"only to {', '.join(allowed)}" if allowed else "not allowed"
            yield Finding("link_domain", BLOCK, f"Link to {host or text[link.start:link.end]}; links are {where}",
                          link.start, link.end)


def _mentions(author_handle: str | None, text: str) -> Iterator[Finding]:
    author = (author_handle or "").strip().lstrip("@").lower()
    for mention in find_mentions(text):
        if mention.value.lower() != author:
            whom = f" (@{author})" if author else ""
            yield Finding("only_mention_author", BLOCK, f"Mentions @{mention.value}; a reply may mention only "
                          f"the person it answers{whom}", mention.start, mention.end)


def _sign_off(policy: Policy, text: str) -> Iterator[Finding]:
    if policy.sign_off_pattern is None or policy.sign_off_pattern.search(text):
        return
    example = policy.sign_off.strip().replace("{initials}", "AB")
    initials = " with your initials" if "{initials}" in policy.sign_off else ""
    end = len(text.rstrip())
    yield Finding("sign_off", BLOCK, f'Missing sign-off: end the reply{initials} like "{example}"', end, end)


def _length(text: str, platform: str, limit: int) -> Iterator[Finding]:
    length = count_length(platform, text)
    if length > limit:
        yield Finding("max_length", BLOCK, f"Too long for {platform}: {length} of {limit} as {platform} counts",
                      fitting_end(platform, text, limit), len(text))


def run_examples(policy: Policy, default_max_length: int = 2000) -> list[ExampleResult]:
    """The policy's own tests: does each `[[examples]]` text block, warn or pass as its author expects?"""
    results = []
    for index, example in enumerate(policy.examples):
        findings = check_text(policy, example.text, platform=example.platform, author_handle=example.author,
                              default_max_length=default_max_length)
        actual = BLOCK if has_blocking(findings) else WARN if findings else "pass"
        results.append(ExampleResult(index, example.line, example.platform, example.text, example.expect,
                                     actual, actual == example.expect, tuple(findings)))
    return results
