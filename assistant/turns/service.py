"""The turn's whole life: opened or joined by a mention, drafted, decided by a human, posted or failed.

Every change of a turn's status goes through this module (``TRANSITIONS`` says which action may move a turn
from which status to which), and so does every draft made current (the one before it turns stale) and every
human decision. Each function is a plain function of a ``Connection`` in the caller's transaction.

A turn's ``version`` goes up with every change. A rule that read a turn and now changes it does so with one
conditional UPDATE on the version it read (``_move``): of two reviewers deciding at once, or a drafter and a
mention joining, exactly one wins; the other gets ``TurnChanged`` (409), and nothing of its transaction is
stored. The life, by status::

    status           action -> next status (``TRANSITIONS``, read by status)
    (a new mention)  open -> drafting; skipped when the person asked not to be answered
    (a follow-up)    open_follow_up -> drafting
    drafting         draft -> pending_review · escalate_by_rule -> escalated · skip -> skipped
                     join, regenerate -> drafting
    pending_review   approve -> approved · reject -> rejected · escalate -> escalated
                     join, regenerate -> drafting
                     redraft (the model, back, replaces the fallback written while it was down) -> pending_review
    escalated        approve (a human's own text) -> approved · reject -> rejected · regenerate -> drafting
    approved         post -> posted · fail -> failed
    failed           regenerate -> drafting · reject -> rejected · escalate -> escalated
    posted, rejected, skipped: final (a new mention opens a new turn)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, case, select, update

from assistant.db.base import utcnow
from assistant.db.bulk import insert_returning_ids, update_rows
from assistant.db.locking import for_update
from assistant.db.lookup import any_of, list_chunks
from assistant.db.people import Person
from assistant.db.turns import OPEN_TURN_STATES, Decision, Draft, Turn
from assistant.errors import Conflict, NotFound, StaleDraft, TurnChanged

TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "join": (OPEN_TURN_STATES, "drafting"),
    "draft": (("drafting",), "pending_review"),
    "redraft": (("pending_review",), "pending_review"),
    "escalate_by_rule": (("drafting",), "escalated"),
    "skip": (("drafting",), "skipped"),
    "regenerate": (("pending_review", "drafting", "escalated", "failed"), "drafting"),
    "approve": (("pending_review", "escalated"), "approved"),
    "reject": (("pending_review", "escalated", "failed"), "rejected"),
    "escalate": (("pending_review", "failed"), "escalated"),
    "post": (("approved",), "posted"),
    "fail": (("approved",), "failed"),
    "erase": (("drafting", "pending_review", "escalated", "approved", "failed"), "skipped"),
}
"""action -> (the statuses it may start from, the status it leads to). A new turn opens as ``drafting``, or
``skipped`` when its person asked not to be answered (``open``)."""

DECIDED_BY_HUMAN = ("approve", "reject", "escalate")
"""Actions that set ``decided_at``."""

_TURNS = Turn.__table__
_DRAFTS = Draft.__table__
_DECISIONS = Decision.__table__


@dataclass(frozen=True)
class TurnRow:
    """A turn as a rule read it; ``version`` is what changing it checks against."""

    id: int
    brand_id: int
    person_id: int
    platform: str
    status: str
    version: int
    current_draft_id: int | None


TURN_COLUMNS = (Turn.id, Turn.brand_id, Turn.person_id, Turn.platform, Turn.status, Turn.version,
                Turn.current_draft_id)
_LOAD = select(*TURN_COLUMNS).where(Turn.id == bindparam("turn_id"), Turn.brand_id == bindparam("brand_id"))


def load(conn: Connection, brand_id: int, turn_id: int) -> TurnRow:
    """The brand's turn; another brand's is 404 like an unknown one."""
    found = conn.execute(_LOAD, {"turn_id": turn_id, "brand_id": brand_id}).first()
    if found is None:
        raise NotFound(f"no turn {turn_id}")
    return TurnRow(*found)


# Opening and joining (SPEC 3) ------------------------------------------------------------------------------

@dataclass(slots=True)
class Arrival:
    """A mention arriving for a person, in a conversation (None: none known)."""

    person_id: int
    platform: str
    conversation: str | None
    at: dt.datetime


@dataclass
class Placement:
    """Where a batch of arrivals went."""

    turn_ids: list[int]
    """Per arrival, in order."""
    status: dict[int, str]
    """Each turn's status after the batch."""
    opened: list[int]
    """Turns opened in ``drafting``: each needs a draft."""
    joined: list[int]
    """Turns that already existed and went back to ``drafting``: each needs a new draft."""


def place(conn: Connection, brand_id: int, arrivals: Sequence[Arrival], quiet: set[int],
          now: dt.datetime) -> Placement:
    """Open or join a turn for each arrival. A mention joins the same person's open turn on its platform with
    the same conversation; a mention with no conversation joins that person's newest open turn; otherwise it
    opens one, ``skipped`` for a person in ``quiet`` (they asked not to be answered). A joined turn goes
    back to drafting, its waiting time starts at its oldest mention, and its draft turns stale."""
    open_turns = _open_turns(conn, sorted({a.person_id for a in arrivals}))
    new_turns: list[dict[str, Any]] = []
    joined: dict[int, dict[str, Any]] = {}
    placed: list[dict[str, Any]] = []
    for a in arrivals:
        if a.person_id in quiet:
            turn = _new_turn(brand_id, a, "skipped", now)
            new_turns.append(turn)
        else:
            turn = _matching(open_turns.get(a.person_id, ()), a.platform, a.conversation)
            if turn is None:
                turn = _new_turn(brand_id, a, "drafting", now)
                new_turns.append(turn)
                open_turns.setdefault(a.person_id, []).append(turn)
            else:
                # a stored turn's waiting_since is lowered in SQL, to the earliest of this batch's mentions
                turn["waiting_since"] = a.at if turn["waiting_since"] is None else min(turn["waiting_since"], a.at)
                if "current_draft_id" in turn:  # a stored turn, not one this batch opens
                    joined[turn["id"]] = turn
        placed.append(turn)
    if new_turns:
        insert_returning_ids(conn, _TURNS, new_turns)  # sets each turn's "id"
    _join(conn, joined, now)
    status = {t["id"]: t["status"] for t in new_turns} | {tid: "drafting" for tid in joined}
    return Placement([t["id"] for t in placed], status,
                     [t["id"] for t in new_turns if t["status"] == "drafting"], list(joined))


def open_follow_up(conn: Connection, brand_id: int, person_id: int, *, like_turn_id: int,
                   waiting_since: dt.datetime, now: dt.datetime) -> tuple[int, bool]:
    """A turn for something we owe a person (a promise fallen due): their newest open turn if they have one, else
    a new ``drafting`` turn in the conversation of ``like_turn_id``, waiting since ``waiting_since`` so it
    takes its place in the queue by when the debt began. Answers the turn's id and whether it is new (a new
    one needs a draft job). The person is locked first, as ingest locks people before placing mentions, so a
    mention arriving meanwhile (another process) joins this turn rather than opening its own."""
    conn.execute(_LOCK_PERSON, {"person_id": person_id})
    existing = conn.scalar(select(Turn.id).where(Turn.person_id == person_id, Turn.status.in_(OPEN_TURN_STATES))
                           .order_by(Turn.waiting_since.desc(), Turn.id.desc()).limit(1))
    if existing is not None:
        return existing, False
    made = conn.execute(select(Turn.platform, Turn.conversation_key).where(Turn.id == like_turn_id)).one()
    turn_id = conn.execute(_TURNS.insert().values(
        brand_id=brand_id, person_id=person_id, platform=made.platform, conversation_key=made.conversation_key,
        status="drafting", waiting_since=waiting_since, version=0, created_at=now, updated_at=now,
    )).inserted_primary_key[0]
    return turn_id, True


_LOCK_PERSON = for_update(select(Person.id).where(Person.id == bindparam("person_id")))


def _new_turn(brand_id: int, a: Arrival, status: str, now: dt.datetime) -> dict[str, Any]:
    return {"brand_id": brand_id, "person_id": a.person_id, "platform": a.platform,
            "conversation_key": a.conversation, "status": status, "waiting_since": a.at, "version": 0,
            "created_at": now, "updated_at": now}


def _matching(candidates: Sequence[dict[str, Any]], platform: str, conversation: str | None) -> dict[str, Any] | None:
    for turn in reversed(candidates):
        if turn["platform"] == platform and (conversation is None or turn["conversation_key"] == conversation):
            return turn
    return None


_OPEN_TURNS = for_update(
    select(Turn.id, Turn.person_id, Turn.platform, Turn.conversation_key, Turn.current_draft_id, Turn.created_at)
    .where(any_of(Turn.person_id, "people"), Turn.status.in_(OPEN_TURN_STATES))
    .order_by(Turn.id))


def _open_turns(conn: Connection, person_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The people's open turns, oldest first, locked (in id order, as every writer locks turns, so concurrent
    batches never wait on each other crosswise): a reviewer deciding one meanwhile waits for this transaction,
    then finds it changed. ``waiting_since`` is not read: joining lowers it in SQL."""
    found: dict[int, list[dict[str, Any]]] = {}
    for part in list_chunks(conn, person_ids):
        for tid, pid, platform, conversation_key, draft_id, created_at in conn.execute(_OPEN_TURNS, {"people": part}):
            found.setdefault(pid, []).append({"id": tid, "platform": platform, "conversation_key": conversation_key,
                                              "current_draft_id": draft_id, "waiting_since": None,
                                              "created_at": created_at})
    for candidates in found.values():
        if len(candidates) > 1:
            candidates.sort(key=lambda t: (t["created_at"], t["id"]))
    return found


_SINCE = bindparam("since", type_=_TURNS.c.waiting_since.type)
_JOIN = (update(_TURNS).where(_TURNS.c.id == bindparam("turn_id"))
         .values(status=TRANSITIONS["join"][1], version=_TURNS.c.version + 1, updated_at=bindparam("now"),
                 waiting_since=case((_TURNS.c.waiting_since > _SINCE, _SINCE), else_=_TURNS.c.waiting_since)))
_MARK_STALE = update(_DRAFTS).where(any_of(_DRAFTS.c.id, "draft_ids")).values(stale=True)


def _join(conn: Connection, joined: dict[int, dict[str, Any]], now: dt.datetime) -> None:
    if not joined:
        return
    _mark_stale(conn, [t["current_draft_id"] for t in joined.values()])
    update_rows(conn, _JOIN, [{"turn_id": tid, "now": now, "since": t["waiting_since"]} for tid, t in joined.items()],
                key="turn_id")


def _mark_stale(conn: Connection, draft_ids: Sequence[int | None]) -> None:
    stale = [d for d in draft_ids if d is not None]
    if stale:
        conn.execute(_MARK_STALE, {"draft_ids": stale})


# Drafts ----------------------------------------------------------------------------------------------------

def store_draft(conn: Connection, turn: TurnRow, values: dict[str, Any]) -> int:
    """The drafter's draft becomes the turn's current one (the one before turns stale) and the turn goes to
    the queue, if the turn is still drafting at the version the draft was written for (``TurnChanged`` if
    not: the job queued by that change writes the fresh draft). Answers the draft's id."""
    draft_id = _add_draft(conn, turn, values)
    _move(conn, turn, "draft", current_draft_id=draft_id)
    _mark_stale(conn, [turn.current_draft_id])
    return draft_id


def replace_fallback(conn: Connection, turn: TurnRow, fallback_draft_id: int, values: dict[str, Any]) -> int:
    """The model, answering again after it was down, replaces the fallback draft ``fallback_draft_id`` of a turn
    waiting for review: the new draft becomes current and the fallback stale, if the fallback is still current at
    the version the turn was read in (``TurnChanged`` if not: a reviewer decided, asked again, or a mention
    joined). Answers the new draft's id."""
    draft_id = _add_draft(conn, turn, values)
    _move(conn, turn, "redraft", current_draft_id=draft_id)
    if turn.current_draft_id != fallback_draft_id:  # the turn as read already had another draft (nothing is kept)
        raise TurnChanged(f"turn {turn.id} has another draft now")
    _mark_stale(conn, [fallback_draft_id])
    return draft_id


def _add_draft(conn: Connection, turn: TurnRow, values: dict[str, Any]) -> int:
    """Insert a draft of ``turn``. The caller's move makes it current, then marks the one before stale: the
    turn's row is always locked before its drafts' (as ingest's join does), so two writers never wait on
    each other in a circle."""
    draft_id = conn.execute(_DRAFTS.insert(), {**values, "turn_id": turn.id, "created_at": utcnow()}
                            ).inserted_primary_key[0]
    return int(draft_id)


def draft_to_approve(conn: Connection, turn: TurnRow, draft_id: int | None) -> str:
    """What the reviewer approves, checked before any policy check: the text of ``draft_id`` if it is the
    current draft of a turn in ``pending_review``; with no ``draft_id`` (the reviewer wrote the reply), an
    ``escalated`` turn or a ``pending_review`` one with no draft, answering "". A decided turn is a plain
    conflict; a draft replaced, gone stale or being redrafted is ``StaleDraft`` naming the current one."""
    if draft_id is None:
        if turn.status == "escalated" or (turn.status == "pending_review" and turn.current_draft_id is None):
            return ""
        if turn.status in ("pending_review", "drafting"):
            raise StaleDraft(f"turn {turn.id} is {turn.status}"
                             + (f" with draft {turn.current_draft_id} to review; send its draft_id with your text"
                                if turn.status == "pending_review" else "; a draft is being written, read the "
                                "turn again when it is ready"),
                             extra={"current_draft_id": turn.current_draft_id, "turn_status": turn.status})
        raise Conflict(f"turn {turn.id} is already {turn.status}")
    if turn.status not in OPEN_TURN_STATES:
        raise Conflict(f"turn {turn.id} is already {turn.status}")
    found = conn.execute(select(Draft.text, Draft.stale).where(Draft.id == draft_id, Draft.turn_id == turn.id)).first()
    if found is None or draft_id != turn.current_draft_id or found.stale or turn.status != "pending_review":
        raise StaleDraft(f"draft {draft_id} is not the current draft of turn {turn.id}; read the turn again",
                         extra={"current_draft_id": turn.current_draft_id, "turn_status": turn.status})
    return str(found.text)


# A human's decisions ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Approval:
    draft_id: int
    decision_id: int


def approve(conn: Connection, turn: TurnRow, user_id: int, *, draft_id: int | None, final_text: str, diff: str,
            policy_hash: str, findings: list[dict[str, Any]], override_reason: str | None = None) -> Approval:
    """The reviewer approves ``final_text``: the current draft ``draft_id`` (as is or edited; the edit lives
    in the decision), or with no ``draft_id`` their own text, stored as a ``human`` draft made current.
    Check ``draft_to_approve`` first."""
    if draft_id is None:
        draft_id = _add_draft(conn, turn, {"text": final_text, "source": "human", "model": None,
                                           "policy_hash": policy_hash, "findings": findings, "flags": [],
                                           "attempts": 0})
    _move(conn, turn, "approve", current_draft_id=draft_id)
    if draft_id != turn.current_draft_id:
        _mark_stale(conn, [turn.current_draft_id])
    decision_id = _decide(conn, turn, user_id, "approve", draft_id=draft_id, final_text=final_text, diff=diff,
                          override_reason=override_reason, policy_hash=policy_hash, findings=findings)
    return Approval(draft_id, decision_id)


def reject(conn: Connection, turn: TurnRow, user_id: int, reason: str) -> int:
    """Nobody gets this reply; the reason stays with the turn. Answers the decision's id."""
    _move(conn, turn, "reject")
    return _decide(conn, turn, user_id, "reject", draft_id=turn.current_draft_id, reason=reason)


def escalate(conn: Connection, turn: TurnRow, user_id: int, reason: str) -> int:
    """A reviewer hands the turn to someone who may answer it. Answers the decision's id."""
    _move(conn, turn, "escalate")
    return _decide(conn, turn, user_id, "escalate", draft_id=turn.current_draft_id, reason=reason)


def regenerate(conn: Connection, turn: TurnRow, user_id: int, guidance: str | None) -> int:
    """A reviewer asks for a new draft: the current one turns stale (it stays in the record), the turn goes
    back to drafting, and the guidance is kept in the decision. Answers the decision's id."""
    _move(conn, turn, "regenerate")
    _mark_stale(conn, [turn.current_draft_id])
    return _decide(conn, turn, user_id, "regenerate", draft_id=turn.current_draft_id, reason=guidance)


def _decide(conn: Connection, turn: TurnRow, user_id: int, action: str, *, draft_id: int | None,
            **fields: Any) -> int:
    row = {"turn_id": turn.id, "draft_id": draft_id, "user_id": user_id, "action": action, "final_text": None,
           "diff": None, "reason": None, "override_reason": None, "policy_hash": None, "findings": [],
           "created_at": utcnow()} | fields
    return int(conn.execute(_DECISIONS.insert(), row).inserted_primary_key[0])


# The brand's rules, and the outbox -------------------------------------------------------------------------

def escalate_by_rule(conn: Connection, turn: TurnRow, rule: str) -> None:
    """An ``[[escalate]]`` rule matched: a human writes this reply, no model draft."""
    _move(conn, turn, "escalate_by_rule", escalation_rule=rule)


def skip(conn: Connection, turn: TurnRow) -> None:
    """The person asked us to stop, or is marked do-not-reply: nobody answers this turn."""
    _move(conn, turn, "skip")


def erase(conn: Connection, turn_ids: Sequence[int]) -> None:
    """Their person was erased: these open turns close, and nothing more is done for them."""
    _move_many(conn, "erase", turn_ids)


def post(conn: Connection, turn_ids: Sequence[int]) -> None:
    """Their replies were posted."""
    _move_many(conn, "post", turn_ids)


def fail(conn: Connection, turn_id: int) -> None:
    """Its reply could not be posted, for good: the turn comes back to the reviewers."""
    _move_many(conn, "fail", [turn_id])


# The one place a turn's status changes ---------------------------------------------------------------------

_MOVES: dict[tuple[str, ...], Any] = {}


def _move(conn: Connection, turn: TurnRow, action: str, **values: Any) -> TurnRow:
    """Move ``turn`` by ``action`` if the table allows it from the status it was read in (else ``Conflict``),
    and only if nobody changed it since it was read (else ``TurnChanged``)."""
    allowed, status = TRANSITIONS[action]
    if turn.status not in allowed:
        raise Conflict(f"turn {turn.id} is {turn.status}; only a turn that is {' or '.join(allowed)} can "
                       f"{action.replace('_', ' ')}", extra={"turn_status": turn.status})
    now = utcnow()
    if action in DECIDED_BY_HUMAN:
        values["decided_at"] = now
    keys = tuple(sorted(values))
    statement = _MOVES.get(keys)
    if statement is None:
        statement = _MOVES[keys] = (
            update(_TURNS).where(_TURNS.c.id == bindparam("turn_id"), _TURNS.c.version == bindparam("version"))
            .values(status=bindparam("status"), version=_TURNS.c.version + 1, updated_at=bindparam("now"),
                    **{key: bindparam(key, type_=_TURNS.c[key].type) for key in keys}))
    moved = conn.execute(statement, {"turn_id": turn.id, "version": turn.version, "status": status, "now": now,
                                     **values})
    if moved.rowcount != 1:
        raise TurnChanged(f"turn {turn.id} was changed by someone else just now; read it again")
    changed = {k: v for k, v in values.items() if k in _ROW_FIELDS}
    return dataclasses.replace(turn, status=status, version=turn.version + 1, **changed)


_ROW_FIELDS = {f.name for f in dataclasses.fields(TurnRow)}
_MOVE_MANY = {action: update(_TURNS).where(_TURNS.c.id.in_(bindparam("turn_ids", expanding=True)),
                                           _TURNS.c.status.in_(allowed))
              .values(status=status, version=_TURNS.c.version + 1, updated_at=bindparam("now"))
              for action, (allowed, status) in TRANSITIONS.items() if action in ("post", "fail", "erase")}


def _move_many(conn: Connection, action: str, turn_ids: Sequence[int]) -> None:
    """The outbox's moves, many turns in one statement: each must be in a status ``action`` starts from."""
    ids = list(dict.fromkeys(turn_ids))
    if not ids:
        return
    moved = conn.execute(_MOVE_MANY[action], {"turn_ids": ids, "now": utcnow()})
    if moved.rowcount != len(ids):
        allowed = TRANSITIONS[action][0]
        raise Conflict(f"a turn among {ids} is no longer {' or '.join(allowed)}")


__all__ = ["Approval", "Arrival", "Placement", "TRANSITIONS", "TURN_COLUMNS", "TurnRow", "approve",
           "draft_to_approve", "erase", "escalate", "escalate_by_rule", "fail", "load", "open_follow_up", "place",
           "post", "regenerate", "reject", "replace_fallback", "skip", "store_draft"]
