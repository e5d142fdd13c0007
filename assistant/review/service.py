"""The approval queue and a human's decisions on a turn: approve, reject, escalate.

Plain functions over the database, called by the review API and the queue pages alike. Every decision is
taken by a user (never an API key), lands with its decision row and audit event in one transaction, and
moves the turn with a conditional UPDATE on its ``version``: of two reviewers deciding at once, one wins
and the other gets 409.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.audit import record
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.audit import AuditEvent
from assistant.db.base import utcnow
from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction, Person
from assistant.db.tenancy import User
from assistant.db.turns import TURN_STATES, Decision, Draft, Turn
from assistant.errors import Conflict, Forbidden, NotFound, PolicyBlocked, StaleDraft, ValidationFailed
from assistant.validation import clean_text
from assistant.outbox.service import create_reply
from assistant.pagination import AfterTime, Page, decode_cursor, encode_cursor
from assistant.people.service import profiles, recent_histories
from assistant.policy import Policy, check_text
from assistant.policy.service import brand_policy
from assistant.review.schemas import (AuditOut, Approved, Decided, DecisionOut, DraftOut, Fairness, MentionOut,
                                      TurnOut, WaitGroup)
from assistant.webhooks.events import emit

AUDIENCE_BUCKETS = (("unknown", None), ("<1k", 1_000), ("1k–10k", 10_000), ("10k–100k", 100_000),
                    ("≥100k", math.inf))
"""Follower buckets for the fairness view: each takes counts below its bound; unknown has none."""
REJECTABLE = ("pending_review", "escalated", "failed")
ESCALATABLE = ("pending_review", "failed")
ANSWERED = ("approved", "posted")


# Reading ---------------------------------------------------------------------------------------------------

async def queue_page(db: Database, brand_id: int, *, limit: int, cursor: str | None,
                     status: str = "pending_review") -> Page[TurnOut]:
    """Turns in fair order: whoever started waiting first comes first, then by id; never by followers."""
    async with db.read() as session:
        return await _queue_page(session, brand_id, limit=limit, cursor=cursor, status=status)


async def _queue_page(session: AsyncSession, brand_id: int, *, limit: int, cursor: str | None,
                      status: str) -> Page[TurnOut]:
    if status not in TURN_STATES:
        raise ValidationFailed.field("status", f"use one of {', '.join(TURN_STATES)}")
    after = decode_cursor(cursor, AfterTime)
    query = select(Turn).where(Turn.brand_id == brand_id, Turn.status == status)
    if after is not None:
        query = query.where(or_(Turn.waiting_since > after.at, and_(Turn.waiting_since == after.at,
                                                                     Turn.id > after.id)))
    turns = list((await session.execute(query.order_by(Turn.waiting_since, Turn.id).limit(limit + 1))).scalars())
    items = await turn_views(session, turns[:limit])
    next_cursor = None
    if len(turns) > limit:
        last = turns[limit - 1]
        next_cursor = encode_cursor(AfterTime(last.waiting_since, last.id))
    return Page(items=items, next_cursor=next_cursor)


@dataclass(frozen=True)
class QueueScreen:
    """Everything the queue page shows, read in one transaction."""

    page: Page[TurnOut]
    items: list[TurnOut]
    """The page's turns, the pinned one first."""
    focus: TurnOut | None
    counts: dict[str, int]
    history: list[Any]
    """The focused person's newest messages, newest first."""
    policy: Policy


async def queue_screen(db: Database, brand_id: int, *, status: str, limit: int, cursor: str | None,
                       focus_id: int | None, pinned: TurnOut | None = None, count_statuses: Sequence[str],
                       cap: int, history_limit: int) -> QueueScreen:
    """The queue page in one read transaction and a fixed number of statements whatever the page size: the
    page of turns, the (capped) counts, the brand's policy and the history of the one turn in focus."""
    async with db.read() as session:
        page = await _queue_page(session, brand_id, limit=limit, cursor=cursor, status=status)
        items = list(page.items)
        if pinned is not None:
            items = [pinned] + [t for t in items if t.id != pinned.id]
        focus = next((t for t in items if t.id == focus_id), items[0] if items else None)
        counts = await _capped_counts(session, brand_id, count_statuses, cap)
        history = (await (await session.connection()).run_sync(
            recent_histories, [focus.person.id], history_limit))[focus.person.id] \
            if focus is not None else []
        policy = await (await session.connection()).run_sync(brand_policy, brand_id)
    return QueueScreen(page, items, focus, counts, history, policy)


async def get_turn(db: Database, brand_id: int, turn_id: int) -> TurnOut:
    async with db.read() as session:
        turn = await _load_turn(session, brand_id, turn_id)
        return (await turn_views(session, [turn]))[0]


async def waiting_count(db: Database, brand_id: int) -> int:
    """How many turns await a reviewer now (``pending_review``), exactly."""
    async with db.read() as session:
        return await session.scalar(select(func.count()).select_from(Turn).where(
            Turn.brand_id == brand_id, Turn.status == "pending_review")) or 0


async def queue_counts(db: Database, brand_id: int, statuses: Sequence[str] = ("pending_review", "escalated"), *,
                       cap: int = 10_000) -> dict[str, int]:
    """How many turns are in each status, each counted up to ``cap + 1`` (show "10,000+"), in one statement."""
    async with db.read() as session:
        return await _capped_counts(session, brand_id, statuses, cap)


async def _capped_counts(session: AsyncSession, brand_id: int, statuses: Sequence[str], cap: int) -> dict[str, int]:
    """Each count reads at most ``cap + 1`` entries of the (brand_id, status, waiting_since, id) index and stops:
    the header costs the same with a hundred or a million waiting, where a full COUNT over 100,000 pending
    turns took 10-25 ms on SQLite."""
    counts = [select(func.count()).select_from(
        select(Turn.id).where(Turn.brand_id == brand_id, Turn.status == status).limit(cap + 1).subquery())
        .scalar_subquery() for status in statuses]
    row = (await session.execute(select(*counts))).one()
    return dict(zip(statuses, (int(n or 0) for n in row)))


async def turn_views(session: AsyncSession, turns: Sequence[Turn]) -> list[TurnOut]:
    """Turns with their person, mentions, drafts and decisions, in a fixed number of queries for any count."""
    ids = [t.id for t in turns]
    if not ids:
        return []
    people = (await session.execute(select(Person).where(Person.id.in_({t.person_id for t in turns})))).scalars()
    person_of = {p.id: p for p in await (await session.connection()).run_sync(profiles, list(people))}
    mentions: dict[int, list[MentionOut]] = {i: [] for i in ids}
    for m in (await session.execute(select(Interaction).where(
            Interaction.turn_id.in_(ids), Interaction.direction == "inbound")
            .order_by(Interaction.occurred_at, Interaction.id))).scalars():
        mentions[m.turn_id].append(MentionOut(m.id, m.text, m.occurred_at, m.external_id, m.url))
    drafts: dict[int, list[DraftOut]] = {i: [] for i in ids}
    for d in (await session.execute(select(Draft).where(Draft.turn_id.in_(ids))
                                    .order_by(Draft.created_at.desc(), Draft.id.desc()))).scalars():
        drafts[d.turn_id].append(DraftOut(d.id, d.text, d.source, d.model, list(d.findings or []),
                                          list(d.flags or []), d.stale, d.guidance, d.created_at, d.error))
    decisions: dict[int, list[DecisionOut]] = {i: [] for i in ids}
    for d, email in await session.execute(select(Decision, User.email).join(User, User.id == Decision.user_id)
                                          .where(Decision.turn_id.in_(ids))
                                          .order_by(Decision.created_at, Decision.id)):
        decisions[d.turn_id].append(DecisionOut(d.id, d.action, email, d.final_text, d.diff, d.reason,
                                                d.override_reason, d.created_at))
    return [TurnOut(id=t.id, status=t.status, platform=t.platform, waiting_since=t.waiting_since,
                    escalation_rule=t.escalation_rule, person=person_of[t.person_id], mentions=mentions[t.id],
                    current_draft=next((d for d in drafts[t.id] if d.id == t.current_draft_id), None),
                    drafts=drafts[t.id], decisions=decisions[t.id]) for t in turns]


# Deciding --------------------------------------------------------------------------------------------------

class DoNotReply(Conflict):
    """The person asked us to stop (``do_not_reply``) after the turn was drafted: nothing goes out."""

    title, slug = "The person asked not to be replied to", "do-not-reply"


def initials(display_name: str | None, email: str | None = None) -> str:
    """A reviewer's initials for the sign-off: the first letter of each of up to three words of the display
    name, uppercased ("Maria del Rio" → "MDR"); a one-word name gives its first two letters ("Ana" → "AN").
    Words without a letter are skipped. No usable name: the same from the email's local part."""
    for source in (display_name or "", (email or "").split("@")[0].replace(".", " ").replace("_", " ")):
        words = [[c for c in word if c.isalpha()] for word in source.split()]
        words = [w for w in words if w]
        if len(words) == 1:
            return "".join(words[0][:2]).upper()
        if words:
            return "".join(w[0] for w in words[:3]).upper()
    return ""


def rendered_sign_off(policy: Policy, reviewer_initials: str) -> str | None:
    """The brand's sign-off as this reviewer writes it ("–{initials}" → "–MR"); None when there is none."""
    if not policy.sign_off or not policy.sign_off.strip():
        return None
    return policy.sign_off.strip().replace("{initials}", reviewer_initials)


def signed(policy: Policy, text: str, reviewer_initials: str) -> str:
    """``text`` ending with the brand's sign-off as this reviewer writes it, added only when it is missing."""
    sign_off = rendered_sign_off(policy, reviewer_initials)
    if sign_off is None or policy.sign_off_pattern is None or policy.sign_off_pattern.search(text):
        return text
    return f"{text.rstrip()} {sign_off}" if text.strip() else sign_off


async def approve(db: Database, actor: Principal, turn_id: int, *, draft_id: int | None,
                  text: str | None = None, override_reason: str | None = None,
                  default_max_length: int = 2000) -> Approved:
    """Send the current draft (or the reviewer's edit of it) to the outbox after re-checking the policy.

    With ``draft_id``: that draft must be the current draft of a turn in ``pending_review`` (else 409); an
    edit is kept in the decision (final text and a unified diff against the draft), not as a new draft: the
    drafts list stays the record of what was proposed, the decisions the record of what was decided.

    Without ``draft_id`` a human writes the reply: ``text`` is required, and the turn must be ``escalated``
    (a rule or a reviewer said a human answers it) or ``pending_review`` with no current draft. The text is
    stored as a draft with source ``human``, made current (an earlier draft turns stale), and approved
    through the same checks; the decision's diff is against nothing (every line added). A
    ``pending_review`` turn that has a current draft needs its ``draft_id`` (409 naming it otherwise), so a
    reviewer always says which proposal they read.

    A person marked ``do_not_reply`` (they opted out after the draft was written) is never answered: 409."""
    _require_user(actor)
    if override_reason is not None and not actor.is_admin:
        raise Forbidden("Only an admin may approve over a blocking policy rule")
    final = clean_text(text) if text is not None else None
    reason = clean_text(override_reason, "override_reason") if override_reason is not None else None
    if draft_id is None and final is None:
        raise ValidationFailed.field("text", "write the reply: without a draft_id the text is required")
    try:
        async with db.write() as session:
            turn = await _load_turn(session, actor.brand_id, turn_id)
            if draft_id is None:
                _check_human_reply_allowed(turn)
            else:
                draft = await _current_draft(session, turn, draft_id)
            person = (await session.execute(select(Person.do_not_reply, Person.display_name).where(
                Person.id == turn.person_id))).one()
            if person.do_not_reply:
                raise DoNotReply(f"{person.display_name or 'This person'} asked us not to reply (do_not_reply is "
                                 f"set on person {turn.person_id}); nothing was sent. Clear the flag on their "
                                 f"person page if they want an answer after all.",
                                 extra={"person_id": turn.person_id})
            policy = await (await session.connection()).run_sync(brand_policy, turn.brand_id)
            if draft_id is None:
                assert final is not None
                draft = await _store_human_draft(session, turn, final, policy.hash)
                proposed = ""
            else:
                proposed = draft.text
            as_is = final is None
            final = final if final is not None else draft.text
            handle = await session.scalar(select(Handle.handle).where(
                Handle.person_id == turn.person_id, Handle.platform == turn.platform).order_by(Handle.id).limit(1))
            findings = [f.to_dict() for f in check_text(policy, final, platform=turn.platform, author_handle=handle,
                                                        default_max_length=default_max_length)]
            blocking = [f for f in findings if f["severity"] == "block"]
            if blocking and reason is None:
                extra: dict[str, Any] = {"findings": findings}
                detail = "The text breaks a blocking policy rule: " + "; ".join(f["message"] for f in blocking)
                if any(f["rule"] == "sign_off" for f in blocking):
                    extra, detail = await _sign_off_help(session, actor, policy, final, findings, blocking, as_is)
                raise PolicyBlocked(detail, errors=[{"field": "text", "message": f["message"]} for f in blocking],
                                    extra=extra)
            if draft_id is None:
                draft.findings = findings
            await _move(session, turn, "approved", current_draft_id=draft.id)
            decision = await _decision(session, actor, turn, "approve", draft_id=draft.id, final_text=final,
                                       diff=edit_diff(proposed, final), override_reason=reason,
                                       policy_hash=policy.hash, findings=findings)
            reply = await create_reply(session, turn=turn, draft_id=draft.id, decision_id=decision.id, text=final,
                                       user_id=actor.id)
            await (await session.connection()).run_sync(record, actor, "turn.approved", "turn", turn.id,
                    brand_id=turn.brand_id, draft_id=draft.id, decision_id=decision.id, reply_id=reply.id,
                    edited=final != proposed, written_by_human=draft_id is None, override_reason=reason,
                    blocking_rules=sorted({f["rule"] for f in blocking}))
            return Approved(reply_id=reply.id, status="approved")
    except IntegrityError:
        # The replies table's UNIQUE(turn_id): another approval of this turn got there first.
        raise Conflict(f"turn {turn_id} was already approved") from None


def _check_human_reply_allowed(turn: Turn) -> None:
    """A reply written from scratch (no ``draft_id``) is for an escalated turn, or one with no draft."""
    if turn.status == "escalated" or (turn.status == "pending_review" and turn.current_draft_id is None):
        return
    if turn.status in ("pending_review", "drafting"):
        raise StaleDraft(f"turn {turn.id} is {turn.status}"
                         + (f" with draft {turn.current_draft_id} to review; send its draft_id with your text"
                            if turn.status == "pending_review" else "; a draft is being written, read the turn "
                            "again when it is ready"),
                         extra={"current_draft_id": turn.current_draft_id, "turn_status": turn.status})
    raise Conflict(f"turn {turn.id} is already {turn.status}")


async def _store_human_draft(session: AsyncSession, turn: Turn, text: str, policy_hash: str) -> Draft:
    """The reviewer's own text as the turn's new current draft (who wrote it is the approving decision's user
    and the audit event's actor, in the same transaction)."""
    if turn.current_draft_id is not None:
        await session.execute(update(Draft).where(Draft.id == turn.current_draft_id).values(stale=True),
                              execution_options={"synchronize_session": False})
    draft = Draft(turn_id=turn.id, text=text, source="human", model=None, policy_hash=policy_hash, findings=[],
                  flags=[], attempts=0, created_at=utcnow())
    session.add(draft)
    await session.flush()
    return draft


async def _sign_off_help(session: AsyncSession, actor: Principal, policy: Policy, final: str,
                         findings: list[dict[str, Any]], blocking: list[dict[str, Any]],
                         as_is: bool) -> tuple[dict[str, Any], str]:
    """A missing sign-off is the approving reviewer's to add: say exactly what to append, with their initials."""
    user = (await session.execute(select(User.display_name, User.email).where(User.id == actor.id))).one()
    mine = initials(user.display_name, user.email)
    sign_off = rendered_sign_off(policy, mine) or ""
    suffix = f" {sign_off}"
    for f in blocking:
        if f["rule"] == "sign_off":
            f["message"] = f'Missing sign-off: append "{suffix}" to the end of the reply'
    others = [f["message"] for f in blocking if f["rule"] != "sign_off"]
    what = "The draft" if as_is else "The text"
    detail = (f'{what} has no sign-off; the policy asks for "{policy.sign_off}", which for you is "{sign_off}". '
              f'Append "{suffix}" to it' + (" and send the whole reply as `text` with the draft_id" if as_is else "")
              + "." + ("" if not others else " Also: " + "; ".join(others)))
    return {"findings": findings, "sign_off": sign_off, "append": suffix, "suggested_text": signed(policy, final, mine)}, detail


async def reject(db: Database, actor: Principal, turn_id: int, reason: str) -> Decided:
    """Nobody gets this reply; the reason stays with the turn."""
    return await _close(db, actor, turn_id, "reject", "rejected", REJECTABLE, reason)


async def escalate(db: Database, actor: Principal, turn_id: int, reason: str) -> Decided:
    """Hand the turn to someone who may answer it (legal, support lead); subscribed tools hear of it."""
    return await _close(db, actor, turn_id, "escalate", "escalated", ESCALATABLE, reason)


async def _close(db: Database, actor: Principal, turn_id: int, action: str, status: str,
                 allowed: tuple[str, ...], reason: str) -> Decided:
    _require_user(actor)
    reason = clean_text(reason, "reason")
    async with db.write() as session:
        turn = await _load_turn(session, actor.brand_id, turn_id)
        if turn.status not in allowed:
            raise Conflict(f"turn {turn.id} is {turn.status}; only a turn that is {' or '.join(allowed)} "
                           f"can be {status}")
        await _move(session, turn, status)
        decision = await _decision(session, actor, turn, action, draft_id=turn.current_draft_id, reason=reason)
        await (await session.connection()).run_sync(record, actor, f"turn.{status}", "turn", turn.id,
                brand_id=turn.brand_id, decision_id=decision.id, reason=reason)
        if status == "escalated":
            await emit(session, turn.brand_id, "turn.escalated",
                       {"turn_id": turn.id, "person_id": turn.person_id, "reason": reason})
        return Decided(turn_id=turn.id, status=status, decision_id=decision.id)


def edit_diff(draft_text: str, final_text: str) -> str:
    """A unified diff from the draft to what was approved; empty when the draft went out unedited."""
    if draft_text == final_text:
        return ""
    return "".join(difflib.unified_diff(_lines(draft_text), _lines(final_text), "draft", "approved"))


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return [line if line.endswith("\n") else line + "\n" for line in lines]


def _require_user(actor: Principal) -> None:
    if not actor.is_user:
        raise Forbidden("Only a reviewer or admin may decide on a turn; API keys cannot")


async def _load_turn(session: AsyncSession, brand_id: int, turn_id: int) -> Turn:
    turn = await session.scalar(select(Turn).where(Turn.id == turn_id, Turn.brand_id == brand_id))
    if turn is None:
        raise NotFound(f"no turn {turn_id}")
    return turn


async def _current_draft(session: AsyncSession, turn: Turn, draft_id: int) -> Draft:
    """The draft being approved, if it is still the one to approve. A decided turn is a plain conflict; a
    draft that was replaced, went stale or is being redrafted is StaleDraft naming the current one."""
    if turn.status not in ("drafting", "pending_review"):
        raise Conflict(f"turn {turn.id} is already {turn.status}")
    draft = await session.scalar(select(Draft).where(Draft.id == draft_id, Draft.turn_id == turn.id))
    if draft is None or draft.id != turn.current_draft_id or draft.stale or turn.status != "pending_review":
        raise StaleDraft(f"draft {draft_id} is not the current draft of turn {turn.id}; read the turn again",
                         extra={"current_draft_id": turn.current_draft_id, "turn_status": turn.status})
    return draft


async def _move(session: AsyncSession, turn: Turn, status: str, **values: Any) -> None:
    """Change the turn's status only if nobody changed the turn since we read it."""
    now = utcnow()
    moved = await session.execute(
        update(Turn).where(Turn.id == turn.id, Turn.status == turn.status, Turn.version == turn.version)
        .values(status=status, version=turn.version + 1, decided_at=now, updated_at=now, **values),
        execution_options={"synchronize_session": False})
    if moved.rowcount != 1:
        raise Conflict(f"turn {turn.id} was decided by someone else just now; read it again")


async def _decision(session: AsyncSession, actor: Principal, turn: Turn, action: str, *, draft_id: int | None,
                    **fields: Any) -> Decision:
    decision = Decision(turn_id=turn.id, draft_id=draft_id, user_id=actor.id, action=action, created_at=utcnow(),
                        **fields)
    session.add(decision)
    await session.flush()
    return decision


# Fairness and audit ---------------------------------------------------------------------------------------

async def fairness(db: Database, brand_id: int, *, since: dt.datetime, until: dt.datetime) -> Fairness:
    """Median and p90 wait from first mention to approval, over turns approved in [since, until), by audience
    size (the most followers any of the turn's mentions reported) and by first-time vs returning person
    (returning: we had posted or imported a reply to them before this turn began)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValidationFailed.field("since" if since.tzinfo is None else "until", "give a time with its zone")
    followers = (select(func.max(Interaction.followers)).where(Interaction.turn_id == Turn.id)
                 .scalar_subquery())
    returning = exists().where(Interaction.person_id == Turn.person_id, Interaction.direction == "outbound",
                               Interaction.occurred_at < Turn.waiting_since)
    async with db.read() as session:
        rows = (await session.execute(
            select(Turn.waiting_since, Reply.approved_at, followers, returning)
            .join(Reply, Reply.turn_id == Turn.id)
            .where(Turn.brand_id == brand_id, Turn.status.in_(ANSWERED), Reply.approved_at >= since,
                   Reply.approved_at < until))).all()
    waits: dict[str, list[float]] = {}
    everyone: list[float] = []
    for waiting_since, approved_at, most_followers, was_returning in rows:
        wait = max(0.0, (approved_at - waiting_since).total_seconds())
        everyone.append(wait)
        waits.setdefault(_audience(most_followers), []).append(wait)
        waits.setdefault("returning" if was_returning else "first_time", []).append(wait)
    return Fairness(since=since, until=until, overall=_stats("all", everyone),
                    by_audience=[_stats(name, waits.get(name, [])) for name, _ in AUDIENCE_BUCKETS],
                    by_familiarity=[_stats(name, waits.get(name, [])) for name in ("first_time", "returning")])


def _audience(followers: int | None) -> str:
    if followers is None:
        return "unknown"
    return next(name for name, bound in AUDIENCE_BUCKETS[1:] if followers < bound)  # type: ignore[operator]


def _stats(group: str, waits: list[float]) -> WaitGroup:
    """Median, and p90 by nearest rank (an actual wait someone had, not an interpolation)."""
    if not waits:
        return WaitGroup(group, 0, None, None)
    ordered = sorted(waits)
    return WaitGroup(group, len(ordered), statistics.median(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1])


async def audit_page(db: Database, brand_id: int, *, actor: str | None = None, action: str | None = None,
                     limit: int, cursor: str | None) -> Page[AuditOut]:
    """The brand's audit log, newest first; ``actor`` is a user's email or a key's prefix."""
    after = decode_cursor(cursor, AfterTime)
    query = select(AuditEvent).where(AuditEvent.brand_id == brand_id)
    if actor:
        query = query.where(AuditEvent.actor_label == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if after is not None:
        query = query.where(or_(AuditEvent.created_at < after.at,
                                and_(AuditEvent.created_at == after.at, AuditEvent.id < after.id)))
    async with db.read() as session:
        events = list((await session.execute(
            query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit + 1))).scalars())
    items = [AuditOut(e.id, e.created_at, e.actor_type, e.actor_label, e.action, e.subject_type, e.subject_id,
                      dict(e.data or {})) for e in events[:limit]]
    next_cursor = None
    if len(events) > limit:
        last = events[limit - 1]
        next_cursor = encode_cursor(AfterTime(last.created_at, last.id))
    return Page(items=items, next_cursor=next_cursor)




__all__ = ["DoNotReply", "approve", "audit_page", "edit_diff", "escalate", "fairness", "get_turn", "queue_page", "reject",
           "QueueScreen", "initials", "queue_counts", "queue_screen", "rendered_sign_off", "signed", "turn_views", "waiting_count"]
