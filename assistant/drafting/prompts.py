"""From a turn's context to the messages the model reads, and to the fallback draft when there is no model.

Templates live in the top-level ``prompts/`` folder so they can be read and changed without touching code;
a draft records the hash of the templates that produced it. ``StrictUndefined`` makes a template that
names a missing variable fail at once instead of sending the model a prompt with a hole in it.

Text from the public (mentions, earlier messages, names) is untrusted: it goes between ``<<<KIND`` and
``>>>`` lines, and any run of three angle brackets inside it is neutralised so it cannot close the block
and speak as us.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jinja2

from assistant.drafting.budget import fit_history, fit_mentions
from assistant.drafting.history import HistoryItem

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
"""``assistant/prompts``: the top-level ``prompts/`` folder in a checkout (a link), its copy in an installed wheel."""
SYSTEM_TEMPLATE = "draft_reply.system.j2"
USER_TEMPLATE = "draft_reply.user.j2"
FALLBACK_TEMPLATE = "fallback.j2"

_DELIMITER_RUN = re.compile(r"<{3,}|>{3,}")
_NAME = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?")
"""A word of letters (any script), with inner apostrophes, dots or hyphens: O'Neil, Jean-Luc, J.R."""
_FIRST_NAME_MAX = 40


@dataclass(frozen=True)
class PromiseItem:
    """Something an earlier reply of ours promised them, not yet settled."""

    kind: str
    text: str
    promised_at: datetime
    due_at: datetime
    status: str


@dataclass(frozen=True)
class PersonContext:
    display_name: str
    handle: str
    first_contact: bool
    first_seen_at: datetime
    mention_count: int
    reply_count: int
    last_reply_text: str | None


@dataclass(frozen=True, kw_only=True)
class DraftContext:
    """Everything one draft is written from. Keyword-only: a dozen fields read better named."""

    brand_name: str
    voice: str
    sign_off: str | None
    """The brand's sign-off as the policy writes it. With an ``{initials}`` placeholder it is the approving
    reviewer's to add, so neither the model nor the fallback writes it (see ``reviewer_signs``)."""
    platform: str
    max_length: int
    person: PersonContext
    history: list[HistoryItem]
    """Newest first, as loaded; ``render_prompt`` fits it into the budget."""
    mentions: list[HistoryItem]
    """This turn's mentions, oldest first."""
    guidance: str | None = None
    """The reviewer's guidance when they asked for a new draft."""
    feedback: tuple[str, ...] = ()
    """The policy findings of the previous attempt, for the model to fix."""
    now: datetime
    followup: Any = None
    """A ``promises.service.FollowUp`` when the turn opened because a promise fell due: the draft keeps it."""
    promises: list[PromiseItem] = dataclasses.field(default_factory=list)
    """What our earlier replies promised them and is not yet settled."""
    summary: Any = None
    """A ``memory.summaries.PromptSummary``: the relationship summary of history older than fits the budget,
    and whether a fresh one is due."""

    @property
    def reviewer_signs(self) -> bool:
        """The sign-off names the reviewer (``{initials}``): the draft leaves it out, the approval adds it."""
        return bool(self.sign_off) and "{initials}" in (self.sign_off or "")


@dataclass(frozen=True)
class RenderedPrompt:
    messages: list[dict[str, str]]
    template_hash: str
    history_used: int
    """How many history items fitted the budget."""


def as_data(text: str) -> str:
    """Untrusted text for inside a ``<<<KIND ... >>>`` block: it can no longer close the block."""
    return _DELIMITER_RUN.sub(lambda run: run.group().replace("<", "‹").replace(">", "›"), text)


def as_inline_data(text: str) -> str:
    """Untrusted text for one line of the prompt (a name, a handle): no delimiters, no line breaks."""
    return as_data(" ".join(text.split()))


def when(at: datetime, now: datetime) -> str:
    """``11 Oct 2017 13:00 UTC (3 days ago)``: the date for the record, the age for the model's sense of time."""
    at_utc, now_utc = _utc(at), _utc(now)
    return f"{at_utc:%d %b %Y %H:%M} UTC ({_age(now_utc - at_utc)})"


def make_environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # prompts and posts are plain text, never HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(data=as_data, inline=as_inline_data, when=when)
    return env


environment = make_environment(PROMPTS_DIR)


def render_prompt(ctx: DraftContext, *, history_token_budget: int) -> RenderedPrompt:
    history = fit_history(ctx.history, history_token_budget)
    mentions, left_out = fit_mentions(ctx.mentions)
    variables = _variables(ctx) | {"history": history, "mentions": mentions, "mentions_left_out": left_out}
    return RenderedPrompt(
        messages=[
            {"role": "system", "content": environment.get_template(SYSTEM_TEMPLATE).render(variables)},
            {"role": "user", "content": environment.get_template(USER_TEMPLATE).render(variables)},
        ],
        template_hash=template_hash(SYSTEM_TEMPLATE, USER_TEMPLATE),
        history_used=len(history),
    )


def render_fallback(ctx: DraftContext) -> tuple[str, str]:
    """The holding reply for when there is no model: (text, template hash)."""
    variables = _variables(ctx) | {"first_name": first_name(ctx.person.display_name)}
    text = environment.get_template(FALLBACK_TEMPLATE).render(variables).strip()
    return text, template_hash(FALLBACK_TEMPLATE)


def template_hash(*names: str) -> str:
    """sha256 over the named templates' sources, so a draft says which wording produced it."""
    digest = hashlib.sha256()
    for name in names:
        source, _, _ = environment.loader.get_source(environment, name)  # type: ignore[union-attr]
        digest.update(name.encode() + b"\0" + source.encode() + b"\0")
    return digest.hexdigest()


def first_name(display_name: str) -> str:
    """The name to greet with: the first word of the display name when it is a plain name (letters, with
    inner apostrophes, dots or hyphens; decorations such as @, # and emoji around it dropped), else "there".
    The display name is written by the public: markup, links or anything else never reach the greeting."""
    for word in display_name.split():
        word = word.strip("@#\"'“”‘’()[]*_~")
        if not word or not any(ch.isalnum() for ch in word):
            continue  # an emoji or a symbol on its own: look at the next word
        name = _NAME.fullmatch(word)
        return name.group()[:_FIRST_NAME_MAX] if name else "there"
    return "there"


def _variables(ctx: DraftContext) -> dict[str, object]:
    return {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)} | {"reviewer_signs": ctx.reviewer_signs}


def _utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC, the way the database stores them."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600),
                       ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
