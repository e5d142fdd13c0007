"""Drafting a turn: the ``draft_turn`` job, and a reviewer's request for a new draft.

A job reads the turn, decides (escalate, skip, or draft), does the slow part (the model) outside any
transaction, then stores the outcome in one write transaction through ``turns``, which moves the turn only
at the ``version`` it was read in. If the turn changed meanwhile (a mention joined, a reviewer asked again,
someone decided) its version moved on and nothing is stored: the job queued by that change writes the fresh
draft. So however often a
job runs, and whichever worker finishes first, a turn ends with one current draft.

A fallback written because the model was down is not the last word: the same transaction queues a
``redraft_fallback`` job, which asks the model again on ``llm_redraft_schedule`` and, once it answers, replaces
the fallback in the queue by itself (``turns.replace_fallback``), as long as the turn still waits for review with
that fallback current and no reviewer is editing it. The reviewer sees the model's draft; one who had the old
one open and approves it is told it was replaced (409, as for any stale draft).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from assistant import turns
from assistant.audit import record
from assistant.auth.principal import SYSTEM, Principal
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.jobs import Job
from assistant.drafting import hygiene
from assistant.drafting.context import TurnFacts, draft_context, load_turn
from assistant.drafting.injection import injection_flags, name_flags
from assistant.model.client import LazyModelClient
from assistant.drafting.prompts import DraftContext, render_fallback, render_prompt
from assistant.errors import Forbidden, ModelUnavailable, TurnChanged, ValidationFailed
from assistant.jobs import queue
from assistant.jobs.worker import JobFailed
from assistant.memory import summaries, told_before
from assistant.people.identity import opt_out
from assistant.policy import BLOCK, Finding, Policy, check_text, has_blocking, match_escalation, matches_opt_out
from assistant.policy.service import policy_of
from assistant.settings import Settings
from assistant.webhooks.events import emit

GUIDANCE_MAX_CHARS = 2000

DraftValues = dict[str, Any]
"""A draft's column values as the drafter wrote it (``turns.store_draft`` stores it)."""

BeingEdited = Callable[[Connection, int], bool]
"""Whether a reviewer is editing the turn's draft right now (the queue page's presence, handed in by the wiring)."""


@dataclass(frozen=True)
class Composed:
    """What the drafter wrote for a turn."""

    values: DraftValues
    model_down: bool = False
    """A fallback because the model could not be reached: worth asking the model again later."""


@dataclass(frozen=True)
class Escalate:
    rule: str


@dataclass(frozen=True)
class Skip:
    opted_out: bool
    """The person asked us to stop in this turn (else they were already marked do-not-reply)."""


class Drafter:
    """Drafts turns for a worker, through the model client it is given (the worker's jobs share one) or its
    own; ``aclose`` closes it."""

    def __init__(self, db: Database, settings: Settings, *, being_edited: BeingEdited,
                 model: LazyModelClient | None = None) -> None:
        self.db = db
        self.settings = settings
        self.being_edited = being_edited
        self.model = model or LazyModelClient(settings)

    async def aclose(self) -> None:
        await self.model.aclose()

    async def draft_turn(self, job: Job) -> None:
        """The ``draft_turn`` job. A turn no longer drafting (rejected, already drafted) is left alone.

        One read transaction loads the turn, the brand and the context; the outcome is stored in one write
        transaction (``store_outcome``) that also finishes the job and emits the event."""
        loaded = await self.db.run_read(self._load, job.subject_id or 0)
        if loaded is not None and loaded[3] is not None and loaded[3].summary is not None and loaded[3].summary.due:
            # the history outgrew the prompt: summarise the older part first, so this draft remembers it
            await summaries.refresh(self.db, self.model.client if self.settings.llm_configured else None,
                                    loaded[0].person.id, loaded[3].summary.before)
            loaded = await self.db.run_read(self._load, job.subject_id or 0)
        if loaded is None:
            return
        facts, policy, decided, context = loaded
        outcome: Escalate | Skip | DraftValues
        redraft: tuple[float, ...] = ()
        if decided is not None or context is None:
            outcome = decided  # type: ignore[assignment]
        else:
            composed = await self._compose(context, policy, facts)
            outcome = await self._told_before(composed.values, context, policy, facts)
            if composed.model_down:
                redraft = self.settings.llm_redraft_schedule
        try:
            await self.db.run_write(store_outcome, facts, outcome, job, redraft)
        except TurnChanged:
            return  # changed while we worked; the job queued by that change drafts it (the worker finishes this one)

    async def redraft_fallback(self, job: Job) -> None:
        """The ``redraft_fallback`` job: ask the model again for a turn whose draft is a fallback written while
        it was down. Still down: tried again on the schedule (``JobFailed``), then the fallback stays. Answering:
        its draft replaces the fallback, unless the turn moved on meanwhile (decided, asked again, joined by a
        mention, drafted anew) or a reviewer is editing the fallback; then it is left alone for good."""
        fallback_id = int(job.payload.get("draft_id") or 0)
        loaded = await self.db.run_read(self._load_fallback, job.subject_id or 0, fallback_id)
        if loaded is None:
            return
        facts, policy, context = loaded
        composed = await self._compose(context, policy, facts)
        if composed.values["source"] != "model":
            schedule = self.settings.llm_redraft_schedule
            raise JobFailed(f"turn {facts.turn.id}: still no model draft ({composed.values.get('error')})",
                            delay=schedule[min(job.attempts, len(schedule) - 1)])
        values = await self._told_before(composed.values, context, policy, facts)
        try:
            await self.db.run_write(store_redraft, facts, fallback_id, values, job, self.being_edited)
        except TurnChanged:
            return

    async def _told_before(self, values: DraftValues, context: DraftContext, policy: Policy,
                           facts: TurnFacts) -> DraftValues:
        """The draft with memory's findings of what the person was already told."""
        judge = self.model.client if policy.model_judges_told_before and self.settings.llm_configured else None
        values["findings"] = [*values.get("findings", []), *await told_before.check_draft(
            values["text"], context.history, person_id=facts.person.id, model=judge)]
        return values

    def _load_fallback(self, conn: Connection, turn_id: int, fallback_id: int
                       ) -> tuple[TurnFacts, Policy, DraftContext] | None:
        """The turn, its policy and its context, while its fallback ``fallback_id`` still waits for review
        untouched; None once the turn moved on or a reviewer is editing it."""
        facts = load_turn(conn, turn_id)
        if (facts is None or facts.turn.status != "pending_review" or facts.turn.current_draft_id != fallback_id
                or self.being_edited(conn, turn_id)):
            return None
        policy = policy_of(facts.policy_source)
        return facts, policy, draft_context(conn, facts, policy, self.settings, facts.brand_name)

    def _load(self, conn: Connection, turn_id: int
              ) -> tuple[TurnFacts, Policy, Escalate | Skip | None, DraftContext | None] | None:
        """The turn's facts, its brand's policy, what the rules decide, and (when drafting) the context."""
        facts = load_turn(conn, turn_id)
        if facts is None or facts.turn.status != "drafting":
            return None
        policy = policy_of(facts.policy_source)
        decided = _rule_outcome(policy, facts)
        context = None if decided else draft_context(conn, facts, policy, self.settings, facts.brand_name)
        return facts, policy, decided, context

    async def _compose(self, ctx: DraftContext, policy: Policy, facts: TurnFacts) -> Composed:
        """A model draft that passes the policy if the model can write one within the redrafts allowed,
        else its last try with the findings; a fallback draft when there is no model or it stays down."""
        flags = [dict(flag, mention_id=m.id) for m in facts.mentions for flag in injection_flags(m.text)]
        flags += name_flags(ctx.person.display_name)
        common: DraftValues = {"turn_id": facts.turn.id, "policy_hash": policy.hash, "flags": flags,
                               "guidance": facts.guidance, "answers_through_id": facts.answers_through_id}
        if not self.settings.llm_configured:
            return Composed(self._fallback(ctx, policy, facts, common, "no model configured", attempts=0))
        feedback: tuple[str, ...] = ()
        attempts = prompt_tokens = completion_tokens = latency_ms = 0
        for _ in range(self.settings.policy_max_redrafts + 1):
            prompt = render_prompt(dataclasses.replace(ctx, feedback=feedback),
                                   history_token_budget=self.settings.history_token_budget)
            try:
                result = await self.model.client.complete(prompt.messages)
            except ModelUnavailable as exc:
                return Composed(self._fallback(ctx, policy, facts, common, exc.reason,
                                               attempts=attempts + exc.attempts), model_down=True)
            attempts += result.attempts
            prompt_tokens += result.prompt_tokens or 0
            completion_tokens += result.completion_tokens or 0
            latency_ms += result.latency_ms
            output = hygiene.review_result(result, prompt.messages, ctx, author_handle=facts.handle)
            findings = self._check(policy, facts, output.text)
            if output.ok and not has_blocking(findings):
                break
            feedback = output.feedback + tuple(f.message for f in findings if f.severity == BLOCK)
        if not output.text:
            return Composed(self._fallback(ctx, policy, facts, common, "the model's output held no reply",
                                           attempts=attempts))
        return Composed(dict(common, flags=flags + output.flags, text=output.text, source="model",
                             model=result.model, prompt_hash=prompt.template_hash,
                             findings=[f.to_dict() for f in findings], prompt_tokens=prompt_tokens,
                             completion_tokens=completion_tokens, latency_ms=latency_ms, attempts=attempts))

    def _fallback(self, ctx: DraftContext, policy: Policy, facts: TurnFacts, common: DraftValues, error: str,
                  *, attempts: int) -> DraftValues:
        text, template_hash = render_fallback(ctx)
        return dict(common, text=text, source="fallback", model=None, prompt_hash=template_hash,
                    findings=[f.to_dict() for f in self._check(policy, facts, text)], attempts=attempts, error=error)

    def _check(self, policy: Policy, facts: TurnFacts, text: str) -> list[Finding]:
        return draft_findings(policy, text, platform=facts.turn.platform, author_handle=facts.handle,
                              default_max_length=self.settings.default_max_length)


def draft_findings(policy: Policy, text: str, *, platform: str, author_handle: str | None,
                   default_max_length: int) -> list[Finding]:
    """A draft's findings. A sign-off with ``{initials}`` is the approving reviewer's to add (the queue
    pre-fills it, approval enforces it), so its absence is no finding on a draft."""
    findings = check_text(policy, text, platform=platform, author_handle=author_handle,
                          default_max_length=default_max_length)
    if policy.sign_off and "{initials}" in policy.sign_off:
        findings = [f for f in findings if f.rule != "sign_off"]
    return findings


def _rule_outcome(policy: Policy, facts: TurnFacts) -> Escalate | Skip | None:
    """What the brand's rules decide before any model is asked: a human must answer, or we must not."""
    texts = [m.text for m in facts.unreviewed]
    rule = match_escalation(policy, texts) if texts else None
    if rule is not None:
        return Escalate(rule)
    if any(matches_opt_out(policy, text) for text in texts):
        return Skip(opted_out=True)
    if facts.person.do_not_reply:
        return Skip(opted_out=False)
    return None


def store_outcome(conn: Connection, facts: TurnFacts, outcome: Escalate | Skip | DraftValues, job: Job | None,
                  redraft_schedule: tuple[float, ...] = ()) -> None:
    """What drafting decided, in one write transaction: a draft made current and the turn in the queue, or the
    turn escalated by a rule, or skipped. ``turns`` checks the turn is still drafting at the version the
    outcome was worked out for (``TurnChanged`` otherwise, and nothing is stored). The job finishes with it.
    With a ``redraft_schedule`` (a fallback because the model was down), a ``redraft_fallback`` job is queued
    for its first delay."""
    turn = facts.turn
    if isinstance(outcome, Escalate):
        turns.escalate_by_rule(conn, turn, outcome.rule)
        record(conn, SYSTEM, "turn.escalated", "turn", turn.id, brand_id=turn.brand_id, rule=outcome.rule)
        emit(conn, turn.brand_id, "turn.escalated", [{"turn_id": turn.id, "person_id": turn.person_id,
                                                       "rule": outcome.rule}])
    elif isinstance(outcome, Skip):
        if outcome.opted_out:  # the person before the turn, the order ingest locks them in (no deadlock)
            opt_out(conn, turn.person_id)
            record(conn, SYSTEM, "person.opted_out", "person", turn.person_id, brand_id=turn.brand_id,
                   turn_id=turn.id)
        turns.skip(conn, turn)
    else:
        draft_id = turns.store_draft(conn, turn, outcome)
        emit(conn, turn.brand_id, "turn.pending_review", [{"turn_id": turn.id, "person_id": turn.person_id,
                                                           "draft_id": draft_id, "source": outcome["source"]}])
        if redraft_schedule:
            queue.enqueue(conn, queue.REDRAFT_FALLBACK, [turn.id], brand_id=turn.brand_id,
                          payload={"draft_id": draft_id}, max_attempts=len(redraft_schedule), skip_if_queued=False,
                          run_after=utcnow() + dt.timedelta(seconds=redraft_schedule[0]))
    if job is not None:
        queue.finish(conn, job)


def store_redraft(conn: Connection, facts: TurnFacts, fallback_id: int, values: DraftValues, job: Job,
                  being_edited: BeingEdited) -> None:
    """The model's draft replaces the fallback ``fallback_id`` (``turns.replace_fallback``: ``TurnChanged`` if
    the turn moved on), unless a reviewer began editing it meanwhile; the job finishes either way."""
    turn = facts.turn
    if not being_edited(conn, turn.id):
        draft_id = turns.replace_fallback(conn, turn, fallback_id, values)
        record(conn, SYSTEM, "turn.redrafted", "turn", turn.id, brand_id=turn.brand_id, draft_id=draft_id,
               replaced_draft_id=fallback_id)
        emit(conn, turn.brand_id, "turn.pending_review", [{"turn_id": turn.id, "person_id": turn.person_id,
                                                           "draft_id": draft_id, "source": values["source"]}])
    queue.finish(conn, job)


async def request_regenerate(db: Database, actor: Principal, turn_id: int, guidance: str | None) -> None:
    """A reviewer asks for a new draft, optionally with guidance. The current draft turns stale but stays in
    the turn's record; the next draft follows this turn's latest guidance."""
    if not actor.is_user:
        raise Forbidden("Only a reviewer or admin may ask for a new draft")
    guidance = (guidance or "").strip() or None
    if guidance is not None and len(guidance) > GUIDANCE_MAX_CHARS:
        raise ValidationFailed.field("guidance", f"must be at most {GUIDANCE_MAX_CHARS} characters")
    await db.run_write(_regenerate, actor, turn_id, guidance)


def _regenerate(conn: Connection, actor: Principal, turn_id: int, guidance: str | None) -> None:
    turn = turns.load(conn, actor.brand_id, turn_id)
    turns.regenerate(conn, turn, actor.id, guidance)
    record(conn, actor, "turn.regenerate", "turn", turn.id, guidance=guidance)
    queue.enqueue(conn, queue.DRAFT_TURN, [turn.id], brand_id=turn.brand_id, payload={"guidance": guidance})


__all__ = ["Composed", "Drafter", "draft_findings", "request_regenerate", "store_outcome", "store_redraft"]
