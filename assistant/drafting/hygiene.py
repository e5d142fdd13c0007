"""Output hygiene: what a model wrote, less what is not the reply, and what is wrong with what is left.

Real models, small ones most, wrap a reply in things a reviewer must never be handed as a draft: a
preamble ("Here is a reply:"), quotation marks, code fences or our own prompt fences, e-mail headers
("To: ... / Subject: ..."), notes to the team after the reply. ``clean`` strips those. Worse, they echo
the prompt's own structure (its ``<<<MENTION`` fences, its section labels, "Your previous draft broke these
rules"), stop at the token limit mid-sentence, leave nothing once the wrapping is gone, or address someone
other than the person. ``review`` finds those ``Problem``s: the drafter asks again with each problem's
``feedback`` (bounded, with the policy's redrafts) and flags what is still wrong on the draft, so the
reviewer sees it.

Pure functions of text, so every case is a row in a table test (``tests/unit/drafting/test_hygiene.py``).
Mentions of other people are found with the policy's own ``find_mentions``, so "a handle" means the same
thing here as in the ``only_mention_author`` rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.policy.entities import find_mentions

if TYPE_CHECKING:
    from assistant.model.client import ChatResult
    from assistant.drafting.prompts import DraftContext

ECHO = "output_echo"
EMPTY = "output_empty"
TRUNCATED = "output_truncated"
ADDRESSEE = "output_addressee"
PROBLEM_KINDS = (ECHO, EMPTY, TRUNCATED, ADDRESSEE)

ECHO_MIN_WORDS = 7
"""A run of this many words of the prompt's own wording (not its quoted data) in the output is an echo."""

_WORD = re.compile(r"[\w']+", re.UNICODE)
_BOLD = r"[*_]{0,2}"
_PREAMBLE = re.compile(
    rf"^\s*{_BOLD}(?:(?:sure|certainly|of course|ok(?:ay)?|absolutely|great)\b[!,.]?\s*)?(?:"
    rf"here(?:'s|’s| is| are)\s+(?:(?:a|an|the|my|your|our)\s+)?(?:[\w,'’-]+\s+){{0,4}}?"
    rf"(?:reply|response|answer|draft|tweet|message|version|post)\b[^\n:]{{0,80}}:"
    rf"|(?:(?:draft(?:ed)?|suggested|proposed|final|new|my|the|our)\s+)?"
    rf"(?:reply|response|answer|draft|tweet|post|message)(?:\s+(?:to|for)\s+[^\n:]{{1,60}})?\s*{_BOLD}:"
    rf"){_BOLD}",
    re.IGNORECASE)
"""A line that announces the reply rather than being it; text after its colon on the same line is kept."""
_LONE_OPENER = re.compile(r"^\s*(?:sure|certainly|of course|ok(?:ay)?|absolutely)[!.,]?\s*$", re.IGNORECASE)
_HEADER = re.compile(r"^\s*(?:to|from|subject|re|cc|bcc|date)\s*:", re.IGNORECASE)
_CODE_FENCE = re.compile(r"^\s*```[\w-]*\s*$")
_PROMPT_FENCE = re.compile(r"^\s*(?:<{3}|‹{3})\s*(?P<kind>[A-Z]+)?(?P<rest>[^\n]*)$|^\s*(?:>{3}|›{3})\s*$")
_TRAILING_NOTE = re.compile(
    r"^\s*[(\[]?\s*\*{0,2}(?:(?:note|notes|explanation|reasoning|rationale|word count|character count"
    r"|characters|length)\s*\*{0,2}:"
    r"|(?:this|the above|my) (?:reply|response|draft|message) (?:is|has|uses|keeps|stays|was|should)\b"
    r"|i (?:have )?(?:kept|made|wrote) (?:it|this|the (?:reply|response|draft|message))\b"
    r"|\d+ (?:characters|words)\b)",
    re.IGNORECASE)
_RULE_LINE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "„": "“", "`": "`"}
_DATA_BLOCK = re.compile(r"^<<<[^\n]*\n.*?^>>>\s*$", re.MULTILINE | re.DOTALL)
_LABEL = re.compile(r"^\s*(?P<label>[A-Z][\w' ]{1,60}?)\s*:(?:\s|$)")
_TIMESTAMPED_FENCE = re.compile(r"\d{1,2} [A-Z][a-z]{2} \d{4}")


@dataclass(frozen=True)
class Problem:
    """Something wrong with a model's output that cleaning cannot fix."""

    kind: str
    message: str
    """For the reviewer, on the draft's flags."""
    feedback: str
    """For the model, on the next attempt."""

    def flag(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class Output:
    """A model's output after hygiene: the reply text, what was stripped from it, and what is still wrong."""

    text: str
    stripped: tuple[str, ...] = ()
    """Names of the wrappings removed (``preamble``, ``quotes``, ``code_fence``, ...): for the eval report."""
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def flags(self) -> list[dict[str, object]]:
        return [problem.flag() for problem in self.problems]

    @property
    def feedback(self) -> tuple[str, ...]:
        return tuple(problem.feedback for problem in self.problems)


@dataclass(frozen=True)
class PromptShape:
    """What of a rendered prompt is our own wording (echoable) as opposed to quoted data or the reviewer's
    guidance (which a reply may well repeat). Built once per prompt by ``prompt_shape``."""

    labels: frozenset[str] = frozenset()
    """Lower-cased section labels (``person``, ``their message to answer now``, ...)."""
    shingles: frozenset[tuple[str, ...]] = field(default_factory=frozenset)
    """Every run of ``ECHO_MIN_WORDS`` lower-cased words of our wording."""


def prompt_shape(messages: Sequence[dict[str, str]], *, allowed: Iterable[str] = ()) -> PromptShape:
    """The echoable part of a prompt: its text outside the ``<<<KIND ... >>>`` data blocks, cut wherever one
    of the ``allowed`` texts stands (the brand's and the person's names, the reviewer's guidance: a reply may
    well repeat those), so no run of words counted as ours spans them."""
    ours = "\n".join(_DATA_BLOCK.sub("", message.get("content", "")) for message in messages)
    labels = {found["label"].strip().lower() for line in ours.splitlines() if (found := _LABEL.match(line))}
    cuts = sorted({text.strip() for text in allowed if text.strip()}, key=len, reverse=True)
    segments = re.split("|".join(map(re.escape, cuts)), ours, flags=re.IGNORECASE) if cuts else [ours]
    return PromptShape(labels=frozenset(labels), shingles=frozenset().union(*map(_shingles, segments)))


def clean(raw: str) -> tuple[str, tuple[str, ...]]:
    """``raw`` without what is not the reply: (text, names of what was stripped). Never adds anything."""
    stripped: list[str] = []
    lines = raw.strip().splitlines()

    def drop(name: str) -> None:
        if name not in stripped:
            stripped.append(name)

    kept = []
    for line in lines:
        if _CODE_FENCE.match(line):
            drop("code_fence")
        elif (fence := _PROMPT_FENCE.match(line)) and not _is_echoed_fence(fence):
            drop("prompt_fence")
        else:
            kept.append(line)
    lines = kept

    # Leading wrapping: openers, preambles, e-mail headers, blank lines, in any order.
    while lines:
        first = lines[0]
        if not first.strip():
            lines.pop(0)
        elif _LONE_OPENER.match(first):
            lines.pop(0)
            drop("preamble")
        elif (found := _PREAMBLE.match(first)) is not None:
            rest = first[found.end():].strip()
            drop("preamble")
            if rest:
                lines[0] = rest
                break
            lines.pop(0)
        elif _HEADER.match(first):
            lines.pop(0)
            drop("header")
        else:
            break

    # Trailing notes: from the first note paragraph (or a horizontal rule) after the reply onwards.
    for index, line in enumerate(lines):
        if index == 0:
            continue
        previous_blank = not lines[index - 1].strip()
        if _RULE_LINE.match(line) or (_TRAILING_NOTE.match(line) and (previous_blank or line.lstrip()[:1] in "([")):
            lines = lines[:index]
            drop("trailing_note")
            break

    text = "\n".join(lines).strip()
    unquoted = _unquote(text)
    if unquoted != text:
        drop("quotes")
        text = unquoted
    return text, tuple(stripped)


def review(raw: str, *, finish_reason: str | None, author_handle: str | None,
           shape: PromptShape | None = None) -> Output:
    """``clean`` the output, then find what is still wrong with it (in a fixed order, for stable flags)."""
    text, stripped = clean(raw)
    problems: list[Problem] = []
    echoed = echo_evidence(raw, shape or PromptShape())
    if echoed:
        problems.append(Problem(
            ECHO, f"The model's output repeats the prompt ({echoed}): it is not a reply as written; "
                  "rewrite it or ask for a new draft.",
            "Your last answer repeated parts of these instructions or the quoted messages' markers. "
            "Write only the reply itself, as it would be posted."))
    if not _WORD.search(text):
        problems.append(Problem(
            EMPTY, "The model's output held no reply once its wrapping was removed.",
            "Your last answer held no reply text. Write the reply itself."))
    if finish_reason == "length":
        problems.append(Problem(
            TRUNCATED, "The model's output was cut off at its token limit: the reply may end mid-sentence.",
            "Your last answer was cut off because it was too long. Write a shorter reply."))
    others = other_handles(text, author_handle)
    if others:
        listed = ", ".join("@" + handle for handle in others)
        problems.append(Problem(
            ADDRESSEE, f"The draft addresses someone other than the person it answers: {listed}.",
            f"Your last answer addressed {listed}. Write only to the person you are answering."))
    return Output(text=text, stripped=stripped, problems=tuple(problems))


def review_result(result: ChatResult, messages: Sequence[dict[str, str]], ctx: DraftContext, *,
                  author_handle: str | None) -> Output:
    """``review`` of one model answer to the prompt ``messages`` rendered from ``ctx``: the drafter's hook.
    The reviewer's guidance and the names in it are a reply's to repeat, so they never count as an echo."""
    shape = prompt_shape(messages, allowed=(ctx.guidance or "", ctx.person.display_name, ctx.person.handle,
                                            ctx.brand_name))
    return review(result.text, finish_reason=result.finish_reason, author_handle=author_handle, shape=shape)


def echo_evidence(raw: str, shape: PromptShape) -> str:
    """Why ``raw`` reads as an echo of the prompt (a short description), or "" when it does not."""
    for line in raw.splitlines():
        fence = _PROMPT_FENCE.match(line)
        if fence and _is_echoed_fence(fence):
            return f"its fence {line.strip()[:40]!r}"
        label = _LABEL.match(line)
        if label and label["label"].strip().lower() in shape.labels:
            return f"its label {label['label'].strip()!r}"
    words = _words(raw)
    for start in range(len(words) - ECHO_MIN_WORDS + 1):
        run = tuple(words[start:start + ECHO_MIN_WORDS])
        if run in shape.shingles:
            return f"its wording {' '.join(run)!r}"
    return ""


def other_handles(text: str, author_handle: str | None) -> list[str]:
    """The @handles in ``text`` other than the author's, each once, in order of appearance."""
    author = (author_handle or "").strip().lstrip("@").lower()
    seen: dict[str, None] = {}
    for mention in find_mentions(text):
        if mention.value.lower() != author:
            seen.setdefault(mention.value, None)
    return list(seen)


def _is_echoed_fence(fence: re.Match[str]) -> bool:
    """A fence of a message from the prompt (``<<<MENTION``, ``<<<NOTE``, or any with our timestamp) is an
    echo; a bare ``<<<REPLY`` / ``>>>`` around the answer is only wrapping."""
    kind = fence["kind"]
    if kind is None:
        return False
    return kind != "REPLY" or bool(_TIMESTAMPED_FENCE.search(fence["rest"] or ""))


def _unquote(text: str) -> str:
    """Without one pair of quotation marks around the whole text (when they do not also open or close a
    quotation inside it)."""
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        inner = text[1:-1]
        opening, closing = text[0], _QUOTES[text[0]]
        if opening == closing and inner.count(opening) % 2:
            break
        if opening != closing and inner.count(opening) != inner.count(closing):
            break
        text = inner.strip()
    return text


def _words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i:i + ECHO_MIN_WORDS]) for i in range(len(words) - ECHO_MIN_WORDS + 1)}


__all__ = ["ADDRESSEE", "ECHO", "EMPTY", "Output", "PROBLEM_KINDS", "Problem", "PromptShape", "TRUNCATED", "clean",
           "echo_evidence", "other_handles", "prompt_shape", "review",
           "review_result"]
