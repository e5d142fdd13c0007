"""Turns as reviewers see them, and what a reviewer sends to decide on one (SPEC section 5)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from assistant.people.schemas import PersonOut

FinalText = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class MentionOut(msgspec.Struct):
    id: int
    text: str
    at: dt.datetime
    external_id: str
    url: str | None


class DraftOut(msgspec.Struct):
    id: int
    text: str
    source: str
    """``model``, ``fallback`` or ``human``: the page labels a fallback draft as one."""
    model: str | None
    findings: list[dict[str, Any]]
    flags: list[Any]
    stale: bool
    guidance: str | None
    created_at: dt.datetime
    error: str | None = None
    """Why a fallback draft was written: ``no model configured``, or what the model answered."""


class DecisionOut(msgspec.Struct):
    id: int
    action: str
    user: str
    """The deciding user's email."""
    final_text: str | None
    diff: str | None
    reason: str | None
    override_reason: str | None
    at: dt.datetime


class TurnOut(msgspec.Struct):
    id: int
    status: str
    platform: str
    waiting_since: dt.datetime
    escalation_rule: str | None
    person: PersonOut
    mentions: list[MentionOut]
    """Oldest first, as the conversation reads."""
    current_draft: DraftOut | None
    drafts: list[DraftOut]
    """Every draft of the turn, newest first."""
    decisions: list[DecisionOut]
    """Oldest first."""


class ApproveIn(msgspec.Struct, forbid_unknown_fields=True):
    """Approve the current draft (``draft_id``, optionally with an edited ``text``), or send a reply a human
    wrote (``draft_id`` null or omitted, ``text`` required)."""

    draft_id: Annotated[int | None, msgspec.Meta(description=(
        "The current draft you read and approve. Required for a `pending_review` turn that has a current "
        "draft (anything else is 409 naming the current draft). Null or omitted: you write the reply yourself "
        "in `text` (required then); allowed for an `escalated` turn, or a `pending_review` turn with no draft. "
        "The text is stored as a draft with source `human`, made current and approved with the same policy "
        "re-check; a `drafting` turn is 409, a decided one 409."))] = None
    text: FinalText | None = None
    """The reviewer's edited text; without it the draft is approved as it is. If the brand's sign-off (for
    example "–{initials}") is missing, the 422 says exactly what to append (``append``, ``suggested_text``)."""
    override_reason: Reason | None = None
    """Admins only: approve a text that breaks a blocking rule, saying why."""


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class RegenerateIn(msgspec.Struct, forbid_unknown_fields=True):
    guidance: Reason | None = None


class Approved(msgspec.Struct):
    reply_id: int
    status: str


class Decided(msgspec.Struct):
    turn_id: int
    status: str
    decision_id: int


class WaitGroup(msgspec.Struct):
    group: str
    turns: int
    median_seconds: float | None
    p90_seconds: float | None


class Fairness(msgspec.Struct):
    """Waits from first mention to approval, so a team sees whether it drifts toward the famous."""

    since: dt.datetime
    until: dt.datetime
    overall: WaitGroup
    by_audience: list[WaitGroup]
    """Follower buckets in a fixed order: unknown, <1k, 1k–10k, 10k–100k, ≥100k."""
    by_familiarity: list[WaitGroup]
    """``first_time`` and ``returning``."""


class AuditOut(msgspec.Struct):
    id: int
    at: dt.datetime
    actor_type: str
    actor: str
    action: str
    subject_type: str
    subject_id: int | None
    data: dict[str, Any]
