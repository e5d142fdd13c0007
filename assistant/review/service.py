"""The approval queue and a human's decisions on a turn: approve, reject, escalate.

Plain functions over the database, called by the review API and the queue pages alike. Every decision is
taken by a user (never an API key) and lands with its decision row and audit event in one transaction;
``turns`` moves the turn, so of two reviewers deciding at once one wins and the other gets 409.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from assistant import turns
from assistant.audit import record
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.audit import AuditEvent
from assistant.db.base import utcnow
from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction, Person
from assistant.db.tenancy import User
from assistant.db.turns import TURN_STATES, Decision, Draft, Turn
from assistant.errors import Conflict, Forbidden, NotFound, PolicyBlocked, ValidationFailed
from assistant.memory.approvals import ApprovedReply, remember_approval
from assistant.outbox.service import create_reply
from assistant.pagination import AfterTime, Page, decode_cursor, encode_cursor
from assistant.people.service import PROFILE_COLUMNS, profiles, recent_histories
from assistant.policy import Policy, check_text
from assistant.policy.service import brand_policy
from assistant.validation import clean_text
from assistant.review.filters import QueueFilter, narrowed, people_with_handle
from assistant.review.schemas import (AuditOut, Approved, Decided, DecisionOut, DraftOut, Fairness, MentionOut,
                                      TurnOut, WaitGroup)
from assistant.webhooks.events import emit

AUDIENCE_BUCKETS = (("unknown", None), ("<1k", 1_000), ("1k–10k", 10_000), ("10k–100k", 100_000),
                    ("≥100k", math.inf))
"""Follower buckets for the fairness view: each takes counts below its bound; unknown has none."""
ANSWERED = ("approved", "posted")
EVERYONE = QueueFilter()


# Reading ---------------------------------------------------------------------------------------------------

async def queue_page(db: Database, brand_id: int, *, limit: int, cursor: str | None,
                     status: str = "pending_review") -> Page[TurnOut]:
    """Turns in fair order: whoever started waiting first comes first, then by id; never by followers."""
    return await db.run_read(_queue_page, brand_id, limit, cursor, status)


_VIEW_COLUMNS = (Turn.id, Turn.status, Turn.platform, Turn.waiting_since, Turn.escalation_rule, Turn.person_id,
                 Turn.current_draft_id)


def _queue_page(conn: Connection, brand_id: int, limit: int, cursor: str | None, status: str,
                f: QueueFilter = EVERYONE, person_ids: list[int] | None = None) -> Page[TurnOut]:
    """A page of the view ``status`` narrowed by ``f``; ``person_ids``: the people ``f.handle`` names, when
    the caller already looked them up."""
    if status not in TURN_STATES:
        raise ValidationFailed.field("status", f"use one of {', '.join(TURN_STATES)}")
    after = decode_cursor(cursor, AfterTime)
    if f.handle is not None and person_ids is None:
        person_ids = _people_with_handle(conn, brand_id, f.handle)
    query = narrowed(select(*_VIEW_COLUMNS), brand_id, status, f, person_ids)
    if after is not None:
        query = query.where(or_(Turn.waiting_since > after.at, and_(Turn.waiting_since == after.at,
                                                                     Turn.id > after.id)))
    found = conn.execute(query.order_by(Turn.waiting_since, Turn.id).limit(limit + 1)).all()
    items = turn_views(conn, found[:limit])
    next_cursor = None
    if len(found) > limit:
        last = found[limit - 1]
        next_cursor = encode_cursor(AfterTime(last.waiting_since, last.id))
    return Page(items=items, next_cursor=next_cursor)


def _people_with_handle(conn: Connection, brand_id: int, handle: str) -> list[int]:
    return list(conn.scalars(people_with_handle(brand_id, handle)))


@dataclass(frozen=True)
class QueueScreen:
    """Everything the queue page shows, read in one transaction."""

    page: Page[TurnOut]
    items: list[TurnOut]
    """The page's turns, the pinned one first."""
    focus: TurnOut | None
    counts: dict[str, int]
    """How many turns wait in each view (capped), the filter aside."""
    matches: dict[str, int]
    """How many of them the filter keeps, in each view (capped); the same as ``counts`` with no filter."""
    history: list[Any]
    """The focused person's newest messages, newest first."""
    policy: Policy


async def queue_screen(db: Database, brand_id: int, *, status: str, limit: int, cursor: str | None,
                       focus_id: int | None, pinned: TurnOut | None = None, count_statuses: Sequence[str],
                       cap: int, history_limit: int, filters: QueueFilter = EVERYONE,
                       match_cap: int | None = None) -> QueueScreen:
    """The queue page in one read transaction and a fixed number of statements whatever the page size: the
    page of turns, the (capped) counts, the brand's policy and the history of the one turn in focus.
    ``filters`` narrow the page and the counts of matches, capped at ``match_cap`` (default ``cap``; see
    ``review.filters`` for what each filter costs)."""
    return await db.run_read(_queue_screen, brand_id, status, limit, cursor, focus_id, pinned,
                             tuple(count_statuses), cap, history_limit, filters, match_cap or cap)


def _queue_screen(conn: Connection, brand_id: int, status: str, limit: int, cursor: str | None,
                  focus_id: int | None, pinned: TurnOut | None, count_statuses: Sequence[str], cap: int,
                  history_limit: int, filters: QueueFilter = EVERYONE, match_cap: int = 10_000) -> QueueScreen:
    person_ids = _people_with_handle(conn, brand_id, filters.handle) if filters.handle is not None else None
    page = _queue_page(conn, brand_id, limit, cursor, status, filters, person_ids)
    items = list(page.items)
    if pinned is not None:
        items = [pinned] + [t for t in items if t.id != pinned.id]
    focus = next((t for t in items if t.id == focus_id), items[0] if items else None)
    counts = _capped_counts(conn, brand_id, count_statuses, cap)
    matches = counts
    if filters.active:
        # The first page holding every match is its own count: a rare filter is not read twice.
        known = {status: len(page.items)} if cursor is None and page.next_cursor is None else {}
        rest = [s for s in count_statuses if s not in known]
        matches = known | (_capped_counts(conn, brand_id, rest, match_cap, filters, person_ids) if rest else {})
    history = recent_histories(conn, [focus.person.id], limit=history_limit)[focus.person.id] \
        if focus is not None else []
    return QueueScreen(page, items, focus, counts, matches, history, brand_policy(conn, brand_id))


async def get_turn(db: Database, brand_id: int, turn_id: int) -> TurnOut:
    return await db.run_read(_get_turn, brand_id, turn_id)


def _get_turn(conn: Connection, brand_id: int, turn_id: int) -> TurnOut:
    found = conn.execute(select(*_VIEW_COLUMNS).where(Turn.id == turn_id, Turn.brand_id == brand_id)).first()
    if found is None:
        raise NotFound(f"no turn {turn_id}")
    return turn_views(conn, [found])[0]


async def waiting_count(db: Database, brand_id: int) -> int:
    """How many turns await a reviewer now (``pending_review``), exactly."""
    return await db.run_read(_waiting_count, brand_id)


def _waiting_count(conn: Connection, brand_id: int) -> int:
    return conn.scalar(select(func.count()).select_from(Turn).where(
        Turn.brand_id == brand_id, Turn.status == "pending_review")) or 0


async def queue_counts(db: Database, brand_id: int, statuses: Sequence[str] = ("pending_review", "escalated"), *,
                       cap: int = 10_000, filters: QueueFilter = EVERYONE) -> dict[str, int]:
    """How many turns are in each status (those ``filters`` keep), each counted up to ``cap + 1`` (show
    "10,000+")."""
    return await db.run_read(_filtered_counts, brand_id, tuple(statuses), cap, filters)


def _filtered_counts(conn: Connection, brand_id: int, statuses: Sequence[str], cap: int,
                     filters: QueueFilter) -> dict[str, int]:
    person_ids = _people_with_handle(conn, brand_id, filters.handle) if filters.handle is not None else None
    return _capped_counts(conn, brand_id, statuses, cap, filters, person_ids)


def _capped_counts(conn: Connection, brand_id: int, statuses: Sequence[str], cap: int,
                   filters: QueueFilter = EVERYONE, person_ids: list[int] | None = None) -> dict[str, int]:
    """Each count reads at most ``cap + 1`` entries of the (brand_id, status, waiting_since, id) index and stops:
    the header costs the same with a hundred or a million waiting, where a full COUNT over 100,000 pending
    turns took 10-25 ms on SQLite. With a filter, each count reads turns until ``cap + 1`` match (all of the
    view when few do), in one statement for all the views."""
    counts = [select(func.count()).select_from(
        narrowed(select(Turn.id), brand_id, status, filters, person_ids).limit(cap + 1).subquery())
        .scalar_subquery() for status in statuses]
    row = conn.execute(select(*counts)).one()
    return dict(zip(statuses, (int(n or 0) for n in row)))


_MENTION_COLUMNS = (Interaction.id, Interaction.turn_id, Interaction.text, Interaction.occurred_at,
                    Interaction.external_id, Interaction.url)
_DRAFT_COLUMNS = (Draft.id, Draft.turn_id, Draft.text, Draft.source, Draft.model, Draft.findings, Draft.flags,
                  Draft.stale, Draft.guidance, Draft.created_at, Draft.error)
_DECISION_COLUMNS = (Decision.id, Decision.turn_id, Decision.action, User.email, Decision.final_text, Decision.diff,
                     Decision.reason, Decision.override_reason, Decision.created_at)


def turn_views(conn: Connection, turns: Sequence[Any]) -> list[TurnOut]:
    """Turns (rows of ``_VIEW_COLUMNS``) with their person, mentions, drafts and decisions, in a fixed number
    of queries for any count."""
    ids = [t.id for t in turns]
    if not ids:
        return []
    people = conn.execute(select(*PROFILE_COLUMNS).where(Person.id.in_({t.person_id for t in turns}))).all()
    person_of = {p.id: p for p in profiles(conn, people)}
    mentions: dict[int, list[MentionOut]] = {i: [] for i in ids}
    for m in conn.execute(select(*_MENTION_COLUMNS).where(Interaction.turn_id.in_(ids),
                                                          Interaction.direction == "inbound")
                          .order_by(Interaction.occurred_at, Interaction.id)):
        mentions[m.turn_id].append(MentionOut(m.id, m.text, m.occurred_at, m.external_id, m.url))
    drafts: dict[int, list[DraftOut]] = {i: [] for i in ids}
    for d in conn.execute(select(*_DRAFT_COLUMNS).where(Draft.turn_id.in_(ids))
                          .order_by(Draft.created_at.desc(), Draft.id.desc())):
        drafts[d.turn_id].append(DraftOut(d.id, d.text, d.source, d.model, list(d.findings or []),
                                          list(d.flags or []), d.stale, d.guidance, d.created_at, d.error))
    decisions: dict[int, list[DecisionOut]] = {i: [] for i in ids}
    for d in conn.execute(select(*_DECISION_COLUMNS).join(User, User.id == Decision.user_id)
                          .where(Decision.turn_id.in_(ids)).order_by(Decision.created_at, Decision.id)):
        decisions[d.turn_id].append(DecisionOut(d.id, d.action, d.email, d.final_text, d.diff, d.reason,
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
                  default_max_length: int = 2000, model_reads_promises: bool = False) -> Approved:
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
        return await db.run_write(_approve, actor, turn_id, draft_id, final, reason, default_max_length,
                                  model_reads_promises)
    except IntegrityError:
        # The replies table's UNIQUE(turn_id): another approval of this turn got there first.
        raise Conflict(f"turn {turn_id} was already approved") from None


_DO_NOT_REPLY = select(Person.do_not_reply, Person.display_name).where(Person.id == bindparam("person_id"))
_HANDLE = (select(Handle.handle).where(Handle.person_id == bindparam("person_id"),
                                       Handle.platform == bindparam("platform")).order_by(Handle.id).limit(1))


def _approve(conn: Connection, actor: Principal, turn_id: int, draft_id: int | None, final: str | None,
             reason: str | None, default_max_length: int, model_reads_promises: bool = False) -> Approved:
    turn = turns.load(conn, actor.brand_id, turn_id)
    proposed = turns.draft_to_approve(conn, turn, draft_id)
    person = conn.execute(_DO_NOT_REPLY, {"person_id": turn.person_id}).one()
    if person.do_not_reply:
        raise DoNotReply(f"{person.display_name or 'This person'} asked us not to reply (do_not_reply is "
                         f"set on person {turn.person_id}); nothing was sent. Clear the flag on their "
                         f"person page if they want an answer after all.",
                         extra={"person_id": turn.person_id})
    policy = brand_policy(conn, turn.brand_id)
    as_is = final is None
    final = final if final is not None else proposed
    handle = conn.scalar(_HANDLE, {"person_id": turn.person_id, "platform": turn.platform})
    findings = [f.to_dict() for f in check_text(policy, final, platform=turn.platform, author_handle=handle,
                                                default_max_length=default_max_length)]
    blocking = [f for f in findings if f["severity"] == "block"]
    if blocking and reason is None:
        extra: dict[str, Any] = {"findings": findings}
        detail = "The text breaks a blocking policy rule: " + "; ".join(f["message"] for f in blocking)
        if any(f["rule"] == "sign_off" for f in blocking):
            extra, detail = _sign_off_help(conn, actor, policy, final, findings, blocking, as_is)
        raise PolicyBlocked(detail, errors=[{"field": "text", "message": f["message"]} for f in blocking],
                            extra=extra)
    approval = turns.approve(conn, turn, actor.id, draft_id=draft_id, final_text=final,
                             diff=edit_diff(proposed, final), override_reason=reason, policy_hash=policy.hash,
                             findings=findings)
    reply_id = create_reply(conn, turn, draft_id=approval.draft_id, decision_id=approval.decision_id, text=final,
                            user_id=actor.id)
    record(conn, actor, "turn.approved", "turn", turn.id, brand_id=turn.brand_id, draft_id=approval.draft_id,
           decision_id=approval.decision_id, reply_id=reply_id, edited=final != proposed,
           written_by_human=draft_id is None, override_reason=reason,
           blocking_rules=sorted({f["rule"] for f in blocking}))
    source = "human" if draft_id is None else conn.scalar(select(Draft.source).where(Draft.id == approval.draft_id))
    remember_approval(conn, ApprovedReply(turn.brand_id, turn.person_id, turn.id, reply_id, approval.decision_id,
                                          actor.id, source or "model", proposed if draft_id is not None else "",
                                          final, conn.scalar(select(Reply.approved_at).where(Reply.id == reply_id))),
                      policy, model_reads_promises=model_reads_promises)
    return Approved(reply_id=reply_id, status="approved")


def _sign_off_help(conn: Connection, actor: Principal, policy: Policy, final: str, findings: list[dict[str, Any]],
                   blocking: list[dict[str, Any]], as_is: bool) -> tuple[dict[str, Any], str]:
    """A missing sign-off is the approving reviewer's to add: say exactly what to append, with their initials."""
    user = conn.execute(select(User.display_name, User.email).where(User.id == actor.id)).one()
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
    return await _decide_with_reason(db, actor, turn_id, reason, "rejected")


async def escalate(db: Database, actor: Principal, turn_id: int, reason: str) -> Decided:
    """Hand the turn to someone who may answer it (legal, support lead); subscribed tools hear of it."""
    return await _decide_with_reason(db, actor, turn_id, reason, "escalated")


_WITH_REASON = {"rejected": turns.reject, "escalated": turns.escalate}
"""The decisions a reviewer gives a reason for, by the status they leave the turn in."""


async def _decide_with_reason(db: Database, actor: Principal, turn_id: int, reason: str, status: str) -> Decided:
    _require_user(actor)
    return await db.run_write(_decided_with_reason, actor, turn_id, clean_text(reason, "reason"), status)


def _decided_with_reason(conn: Connection, actor: Principal, turn_id: int, reason: str, status: str) -> Decided:
    turn = turns.load(conn, actor.brand_id, turn_id)
    decision_id = _WITH_REASON[status](conn, turn, actor.id, reason)
    record(conn, actor, f"turn.{status}", "turn", turn.id, brand_id=turn.brand_id, decision_id=decision_id,
           reason=reason)
    if status == "escalated":
        emit(conn, turn.brand_id, "turn.escalated", [{"turn_id": turn.id, "person_id": turn.person_id,
                                                       "reason": reason}])
    return Decided(turn_id=turn.id, status=status, decision_id=decision_id)


FOLLOWS_UP = ("approved", "posted", "rejected")
"""A follow-up is for a turn a human closed: one still waiting is answered on the turn itself."""
STILL_WAITING = ("drafting", "pending_review", "escalated")


async def follow_up(db: Database, actor: Principal, turn_id: int, text: str, *,
                    default_max_length: int = 2000) -> int:
    """A reviewer's reply that lost the race on ``turn_id`` (someone else decided it first) becomes a follow-up
    to the same person: a new turn whose draft is the text (source ``human``, its findings the policy's),
    waiting in the queue where the first turn waited, until a human approves it like any other (the policy
    is checked again then). Answers the new turn's id.

    Refused (409, the text unchanged on the page) when the turn is still waiting for a decision, when the
    person asked not to be replied to, or when they have another turn waiting: the text belongs there."""
    _require_user(actor)
    return await db.run_write(_follow_up, actor, turn_id, clean_text(text), default_max_length)


def _follow_up(conn: Connection, actor: Principal, turn_id: int, text: str, default_max_length: int) -> int:
    turn = turns.load(conn, actor.brand_id, turn_id)
    person = conn.execute(_DO_NOT_REPLY, {"person_id": turn.person_id}).one()
    name = person.display_name or "This person"
    if turn.status not in FOLLOWS_UP:
        raise Conflict(f"{name} is still waiting on this turn ({turn.status.replace('_', ' ')}): answer them "
                       f"there rather than with a follow-up.", extra={"turn_status": turn.status})
    if person.do_not_reply:
        raise DoNotReply(f"{name} asked us not to reply; no follow-up was made.", extra={"person_id": turn.person_id})
    waiting = conn.scalar(select(Turn.id).where(Turn.person_id == turn.person_id, Turn.status.in_(STILL_WAITING))
                          .order_by(Turn.waiting_since, Turn.id).limit(1))
    if waiting is not None:
        raise Conflict(f"{name} has another turn waiting; put your text in that reply instead.",
                       extra={"waiting_turn_id": waiting})
    policy = brand_policy(conn, turn.brand_id)
    handle = conn.scalar(_HANDLE, {"person_id": turn.person_id, "platform": turn.platform})
    findings = [f.to_dict() for f in check_text(policy, text, platform=turn.platform, author_handle=handle,
                                                default_max_length=default_max_length)]
    since = conn.scalar(select(Turn.waiting_since).where(Turn.id == turn.id))
    opened_id, _ = turns.open_follow_up(conn, turn.brand_id, turn.person_id, like_turn_id=turn.id,
                                        waiting_since=since, now=utcnow())
    opened = turns.load(conn, turn.brand_id, opened_id)
    draft_id = turns.store_draft(conn, opened, {"text": text, "source": "human", "model": None,
                                                "policy_hash": policy.hash, "findings": findings, "flags": [],
                                                "attempts": 0})
    record(conn, actor, "turn.followed_up", "turn", opened.id, brand_id=turn.brand_id, follows_turn_id=turn.id,
           draft_id=draft_id)
    return opened.id


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
    query = (select(Turn.waiting_since, Reply.approved_at, followers, returning)
             .join(Reply, Reply.turn_id == Turn.id)
             .where(Turn.brand_id == brand_id, Turn.status.in_(ANSWERED), Reply.approved_at >= since,
                    Reply.approved_at < until))
    rows = await db.run_read(_all, query)
    waits: dict[str, list[float]] = {}
    everyone: list[float] = []
    for waiting_since, approved_at, most_followers, was_returning in rows:
        wait = max(0.0, (approved_at - waiting_since).total_seconds())
        everyone.append(wait)
        waits.setdefault(audience_bucket(most_followers), []).append(wait)
        waits.setdefault("returning" if was_returning else "first_time", []).append(wait)
    return Fairness(since=since, until=until, overall=_stats("all", everyone),
                    by_audience=[_stats(name, waits.get(name, [])) for name, _ in AUDIENCE_BUCKETS],
                    by_familiarity=[_stats(name, waits.get(name, [])) for name in ("first_time", "returning")])


def audience_bucket(followers: int | None) -> str:
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
    query = select(*AuditEvent.__table__.c).where(AuditEvent.brand_id == brand_id)
    if actor:
        query = query.where(AuditEvent.actor_label == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if after is not None:
        query = query.where(or_(AuditEvent.created_at < after.at,
                                and_(AuditEvent.created_at == after.at, AuditEvent.id < after.id)))
    events = await db.run_read(_all, query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
                               .limit(limit + 1))
    items = [AuditOut(e.id, e.created_at, e.actor_type, e.actor_label, e.action, e.subject_type, e.subject_id,
                      dict(e.data or {})) for e in events[:limit]]
    next_cursor = None
    if len(events) > limit:
        last = events[limit - 1]
        next_cursor = encode_cursor(AfterTime(last.created_at, last.id))
    return Page(items=items, next_cursor=next_cursor)


def _all(conn: Connection, query: Any) -> list[Any]:
    return list(conn.execute(query).all())


__all__ = ["DoNotReply", "approve", "audit_page", "edit_diff", "escalate", "fairness", "follow_up", "get_turn",
           "queue_page", "reject",
           "QueueScreen", "initials", "queue_counts", "queue_screen", "rendered_sign_off", "signed", "turn_views", "waiting_count"]
