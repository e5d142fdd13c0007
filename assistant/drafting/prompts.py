"""From a turn's context to the messages the model reads, and to the fallback draft when there is no model.

The templates are read through ``assistant.model.templates`` (the top-level ``prompts/`` folder, strict about
missing variables, fencing text from the public); a draft records the hash of the templates that produced it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from assistant.model.budget import fit_history, fit_mentions
from assistant.model.history import HistoryItem
from assistant.model.templates import environment, template_hash

SYSTEM_TEMPLATE = "draft_reply.system.j2"
USER_TEMPLATE = "draft_reply.user.j2"
FALLBACK_TEMPLATE = "fallback.j2"

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
