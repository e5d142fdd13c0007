"""Drafting a turn: the ``draft_turn`` job, and a reviewer's request for a new draft.

A job reads the turn, decides (escalate, skip, or draft), does the slow part (the model) outside any
transaction, then stores the outcome in one write transaction that first re-reads the turn under a lock.
If the turn changed meanwhile (a mention joined, a reviewer asked again, someone decided) its ``version``
moved on and nothing is stored: the job queued by that change writes the fresh draft. So however often a
job runs, and whichever worker finishes first, a turn ends with one current draft.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.audit import record
from assistant.auth.principal import SYSTEM, Principal
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.jobs import Job
from assistant.db.people import Person
from assistant.db.turns import Decision, Draft, Turn
from assistant.drafting import hygiene
from assistant.drafting.context import TurnFacts, draft_context_on, load_turn_on
from assistant.drafting.injection import injection_flags
from assistant.drafting.llm import ModelClient
from assistant.drafting.prompts import DraftContext, render_fallback, render_prompt
from assistant.errors import Conflict, Forbidden, ModelUnavailable, NotFound, ValidationFailed
from assistant.jobs import queue
from assistant.policy import BLOCK, Finding, Policy, check_text, has_blocking, match_escalation, matches_opt_out
from assistant.policy.service import policy_of
from assistant.settings import Settings
from assistant.webhooks.events import emit, emit_on

REGENERATE_FROM = ("pending_review", "drafting", "escalated", "failed")
GUIDANCE_MAX_CHARS = 2000


@dataclass(frozen=True)
class Escalate:
    rule: str


@dataclass(frozen=True)
class Skip:
    opted_out: bool
    """The person asked us to stop in this turn (else they were already marked do-not-reply)."""


class Drafter:
    """Drafts turns for a worker. Holds its process's one ``ModelClient``, made on first use (so a worker
    without a model configured never builds one) and closed by ``aclose``."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._model: ModelClient | None = None

    @property
    def model(self) -> ModelClient:
        if self._model is None:
            self._model = ModelClient(self.settings)
        return self._model

    async def aclose(self) -> None:
        if self._model is not None:
            await self._model.aclose()
            self._model = None

    async def draft_turn(self, job: Job) -> None:
        """The ``draft_turn`` job. A turn no longer drafting (rejected, already drafted) is left alone.

        One read transaction loads the turn, the brand and the context; a model draft is stored in one write
        transaction (``Database.run_write``) that also finishes the job and emits the event."""
        loaded = await self.db.run_read(self._load, job.subject_id or 0)
        if loaded is None:
            return
        facts, policy, decided, context = loaded
        outcome: Escalate | Skip | Draft = decided or await self._compose(context, policy, facts)  # type: ignore[arg-type]
        if isinstance(outcome, Draft):
            await self.db.run_write(_store_outcome, facts, _draft_values(outcome), job)
            return
        async with self.db.write() as session:
            turn = await session.scalar(select(Turn).where(Turn.id == facts.turn.id).with_for_update())
            if turn is None or turn.status != "drafting" or turn.version != facts.version:
                return  # changed while we worked; the job queued by that change drafts it
            if isinstance(outcome, Escalate):
                await _escalate(session, turn, outcome.rule)
            else:
                await _skip(session, turn, outcome)
            await queue.finish(session, job)

    def _load(self, conn: Connection, turn_id: int
              ) -> tuple[TurnFacts, Policy, Escalate | Skip | None, DraftContext | None] | None:
        """The turn's facts, its brand's policy, what the rules decide, and (when drafting) the context."""
        facts = load_turn_on(conn, turn_id)
        if facts is None or facts.turn.status != "drafting":
            return None
        policy = policy_of(facts.policy_source)
        decided = _rule_outcome(policy, facts)
        context = None if decided else draft_context_on(conn, facts, policy, self.settings, facts.brand_name)
        return facts, policy, decided, context

    async def _compose(self, ctx: DraftContext, policy: Policy, facts: TurnFacts) -> Draft:
        """A model draft that passes the policy if the model can write one within the redrafts allowed,
        else its last try with the findings; a fallback draft when there is no model or it stays down."""
        flags = [dict(flag, mention_id=m.id) for m in facts.mentions for flag in injection_flags(m.text)]
        common: dict[str, Any] = {"turn_id": facts.turn.id, "policy_hash": policy.hash, "flags": flags,
                                  "guidance": facts.guidance, "answers_through_id": facts.answers_through_id}
        if not self.settings.llm_configured:
            return self._fallback(ctx, policy, facts, common, "no model configured", attempts=0)
        feedback: tuple[str, ...] = ()
        attempts = prompt_tokens = completion_tokens = latency_ms = 0
        for _ in range(self.settings.policy_max_redrafts + 1):
            prompt = render_prompt(dataclasses.replace(ctx, feedback=feedback),
                                   history_token_budget=self.settings.history_token_budget)
            try:
                result = await self.model.complete(prompt.messages)
            except ModelUnavailable as exc:
                return self._fallback(ctx, policy, facts, common, exc.reason, attempts=attempts + exc.attempts)
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
            return self._fallback(ctx, policy, facts, common, "the model's output held no reply", attempts=attempts)
        return Draft(**common | {"flags": flags + output.flags}, text=output.text, source="model", model=result.model,
                     prompt_hash=prompt.template_hash, findings=[f.to_dict() for f in findings], prompt_tokens=prompt_tokens,
                     completion_tokens=completion_tokens, latency_ms=latency_ms, attempts=attempts)

    def _fallback(self, ctx: DraftContext, policy: Policy, facts: TurnFacts, common: dict[str, Any], error: str,
                  *, attempts: int) -> Draft:
        text, template_hash = render_fallback(ctx)
        return Draft(**common, text=text, source="fallback", prompt_hash=template_hash,
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


def _settle(turn: Turn, status: str) -> None:
    turn.status = status
    turn.version += 1
    turn.updated_at = utcnow()


async def _escalate(session: AsyncSession, turn: Turn, rule: str) -> None:
    _settle(turn, "escalated")
    turn.escalation_rule = rule
    await (await session.connection()).run_sync(record, SYSTEM, "turn.escalated", "turn", turn.id,
            brand_id=turn.brand_id, rule=rule)
    await emit(session, turn.brand_id, "turn.escalated",
               {"turn_id": turn.id, "person_id": turn.person_id, "rule": rule})


async def _skip(session: AsyncSession, turn: Turn, skip: Skip) -> None:
    _settle(turn, "skipped")
    if skip.opted_out:
        await session.execute(update(Person).where(Person.id == turn.person_id).values(do_not_reply=True),
                              execution_options={"synchronize_session": False})
        await (await session.connection()).run_sync(record, SYSTEM, "person.opted_out", "person", turn.person_id,
                brand_id=turn.brand_id, turn_id=turn.id)


async def store_draft(session: AsyncSession, turn: Turn, draft: Draft) -> None:
    """Make ``draft`` the turn's current one and put the turn in the queue."""
    draft.created_at = utcnow()
    session.add(draft)
    await session.flush()
    if turn.current_draft_id is not None:
        await session.execute(update(Draft).where(Draft.id == turn.current_draft_id).values(stale=True),
                              execution_options={"synchronize_session": False})
    turn.current_draft_id = draft.id
    _settle(turn, "pending_review")
    await emit(session, turn.brand_id, "turn.pending_review",
               {"turn_id": turn.id, "person_id": turn.person_id, "draft_id": draft.id, "source": draft.source})


def _draft_values(draft: Draft) -> dict[str, Any]:
    """The column values a drafter's (unsaved) ``Draft`` was given; the table's defaults fill the rest."""
    return {key: value for key, value in draft.__dict__.items() if not key.startswith("_")}


_DRAFTS = Draft.__table__
_TURNS = Turn.__table__
# Built once, run with parameters: building a statement cost more than SQLite running it.
_TURN_FOR_UPDATE = (select(Turn.status, Turn.version, Turn.current_draft_id, Turn.brand_id, Turn.person_id)
                    .where(Turn.id == bindparam("turn_id")).with_for_update())
_MARK_STALE = _DRAFTS.update().where(_DRAFTS.c.id == bindparam("stale_id")).values(stale=True)
_MAKE_CURRENT = _TURNS.update().where(_TURNS.c.id == bindparam("turn_id")).values(
    current_draft_id=bindparam("new_draft_id", type_=_TURNS.c.current_draft_id.type), status="pending_review",
    version=bindparam("new_version", type_=_TURNS.c.version.type),
    updated_at=bindparam("now", type_=_TURNS.c.updated_at.type))


def _store_outcome(conn: Connection, facts: TurnFacts, values: dict[str, Any], job: Job) -> None:
    """``store_draft`` and ``queue.finish`` as one write transaction on a connection: the turn is re-read
    under a lock (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serializes writers) and
    the draft stored only if the turn is still drafting at the version the draft was written for."""
    found = conn.execute(_TURN_FOR_UPDATE, {"turn_id": facts.turn.id}).first()
    if found is None or found.status != "drafting" or found.version != facts.version:
        return  # changed while we worked; the job queued by that change drafts it (the worker finishes this one)
    now = utcnow()
    draft_id = conn.execute(_DRAFTS.insert().values({**values, "created_at": now})).inserted_primary_key[0]
    if found.current_draft_id is not None:
        conn.execute(_MARK_STALE, {"stale_id": found.current_draft_id})
    conn.execute(_MAKE_CURRENT, {"turn_id": facts.turn.id, "new_draft_id": draft_id,
                                 "new_version": found.version + 1, "now": now})
    emit_on(conn, found.brand_id, "turn.pending_review",
            [{"turn_id": facts.turn.id, "person_id": found.person_id, "draft_id": draft_id,
              "source": values["source"]}])
    queue.finish_on(conn, job)


async def request_regenerate(db: Database, actor: Principal, turn_id: int, guidance: str | None) -> None:
    """A reviewer asks for a new draft, optionally with guidance. The current draft turns stale but stays in
    the turn's record; the next draft follows this turn's latest guidance."""
    if not actor.is_user:
        raise Forbidden("Only a reviewer or admin may ask for a new draft")
    guidance = (guidance or "").strip() or None
    if guidance is not None and len(guidance) > GUIDANCE_MAX_CHARS:
        raise ValidationFailed.field("guidance", f"must be at most {GUIDANCE_MAX_CHARS} characters")
    async with db.write() as session:
        turn = await session.scalar(select(Turn).where(Turn.id == turn_id, Turn.brand_id == actor.brand_id)
                                    .with_for_update())
        if turn is None:
            raise NotFound(f"no turn {turn_id}")
        if turn.status not in REGENERATE_FROM:
            raise Conflict(f"turn {turn_id} is {turn.status}; only a turn that is "
                           f"{', '.join(REGENERATE_FROM)} can be drafted again")
        if turn.current_draft_id is not None:
            await session.execute(update(Draft).where(Draft.id == turn.current_draft_id).values(stale=True),
                                  execution_options={"synchronize_session": False})
        session.add(Decision(turn_id=turn.id, draft_id=turn.current_draft_id, user_id=actor.id,
                             action="regenerate", reason=guidance, created_at=utcnow()))
        _settle(turn, "drafting")
        await (await session.connection()).run_sync(record, actor, "turn.regenerate", "turn", turn.id,
                guidance=guidance)
        await queue.enqueue(session, queue.DRAFT_TURN, [turn.id], brand_id=turn.brand_id,
                            payload={"guidance": guidance})


__all__ = ["Drafter", "draft_findings", "request_regenerate", "store_draft"]
