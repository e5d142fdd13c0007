"""Loading what one draft is written from: the turn, its person, and that person's own history.

Every history query is keyed by the turn's person, never by brand or conversation, so another person's
messages cannot reach the prompt. History is loaded newest first and only as many items as could ever fit
the token budget (each item costs at least its framing), so a regular with years of messages costs the same
as a newcomer.

The drafter loads everything in one read transaction on a plain ``Connection`` (``Database.run_read``), with
Core selects of the columns it needs: ``load_turn``, then ``draft_context``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, or_, select

from assistant.db.base import utcnow
from assistant.db.people import Handle, Interaction, Note, Person
from assistant.db.tenancy import Brand
from assistant.db.turns import Decision, Turn
from assistant.model.budget import ITEM_OVERHEAD_TOKENS
from assistant.model.history import HistoryItem
from assistant.drafting.prompts import DraftContext, PersonContext, PromiseItem
from assistant.memory.summaries import prompt_summary
from assistant.policy import Policy, count_length, effective_limit
from assistant.promises.service import FollowUp, followup_of_turn, unsettled_promises
from assistant.settings import Settings
from assistant.turns import TURN_COLUMNS, TurnRow


@dataclass(frozen=True)
class PersonRow:
    """The person's columns a draft needs."""

    id: int
    display_name: str | None
    do_not_reply: bool
    first_seen_at: dt.datetime
    mention_count: int
    reply_count: int


@dataclass(frozen=True)
class MentionRow:
    id: int
    text: str
    occurred_at: dt.datetime
    received_at: dt.datetime


_PERSON_COLUMNS = (Person.id, Person.display_name, Person.do_not_reply, Person.first_seen_at,
                   Person.mention_count, Person.reply_count)
# Built once, run with parameters: building a statement cost more than SQLite running it.
_TURN_AND_PERSON = (select(*TURN_COLUMNS, *_PERSON_COLUMNS, Brand.name, Brand.policy_toml)
                    .join(Person, Person.id == Turn.person_id).join(Brand, Brand.id == Turn.brand_id)
                    .where(Turn.id == bindparam("turn_id")))
_MENTIONS = (select(Interaction.id, Interaction.text, Interaction.occurred_at, Interaction.received_at)
             .where(Interaction.turn_id == bindparam("turn_id"), Interaction.direction == "inbound")
             .order_by(Interaction.occurred_at, Interaction.id))
_HANDLES = select(Handle.platform, Handle.handle).where(Handle.person_id == bindparam("person_id")).order_by(Handle.id)
_REGENERATE = (select(Decision.reason, Decision.created_at)
               .where(Decision.turn_id == bindparam("turn_id"), Decision.action == "regenerate")
               .order_by(Decision.created_at.desc(), Decision.id.desc()).limit(1))
_MESSAGES = (select(Interaction.direction, Interaction.text, Interaction.occurred_at, Interaction.id)
             .where(Interaction.person_id == bindparam("person_id"),
                    or_(Interaction.turn_id.is_(None), Interaction.turn_id != bindparam("turn_id")))
             .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(bindparam("limit")))
_NOTES = (select(Note.text, Note.created_at).where(Note.person_id == bindparam("person_id"))
          .order_by(Note.created_at.desc(), Note.id.desc()).limit(bindparam("limit")))
_LAST_REPLY = (select(Interaction.text)
               .where(Interaction.person_id == bindparam("person_id"), Interaction.direction == "outbound")
               .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(1))


@dataclass(frozen=True)
class TurnFacts:
    """A turn as the drafter found it. ``version`` is what storing the result checks against."""

    turn: TurnRow
    person: PersonRow
    handle: str
    mentions: list[MentionRow]
    """Oldest first."""
    guidance: str | None
    """The reviewer's guidance from the turn's latest regenerate decision."""
    unreviewed: list[MentionRow]
    """Mentions no reviewer has seen yet: those after the latest regenerate, else all of them. Escalation and
    opt-out rules apply to these only, so a reviewer who asks for a draft of an escalated turn gets one."""
    brand_name: str = ""
    policy_source: str | None = None
    """The brand's stored policy (None: the shipped default), loaded with the turn; see ``policy_of``."""
    followup: FollowUp | None = None
    """The promises this turn follows up, when it opened because they fell due (it may have no mention)."""

    @property
    def version(self) -> int:
        return self.turn.version

    @property
    def answers_through_id(self) -> int | None:
        return max((m.id for m in self.mentions), default=None)


def load_turn(conn: Connection, turn_id: int) -> TurnFacts | None:
    """The turn with its person and mentions; None when it is gone or has no mentions."""
    found = conn.execute(_TURN_AND_PERSON, {"turn_id": turn_id}).first()
    if found is None:
        return None
    split = len(TURN_COLUMNS)
    turn = TurnRow(*found[:split])
    person = PersonRow(*found[split:split + len(_PERSON_COLUMNS)])
    brand_name, policy_source = found[-2:]
    mentions = [MentionRow(*row) for row in conn.execute(_MENTIONS, {"turn_id": turn.id})]
    followup = followup_of_turn(conn, turn.id)
    if not mentions and followup is None:
        return None
    handles = conn.execute(_HANDLES, {"person_id": person.id}).all()
    handle = next((h for p, h in handles if p == turn.platform), handles[0][1] if handles else "")
    regenerate = conn.execute(_REGENERATE, {"turn_id": turn.id}).first()
    guidance, reviewed_at = regenerate if regenerate else (None, None)
    unreviewed = [m for m in mentions if reviewed_at is None or m.received_at > reviewed_at]
    return TurnFacts(turn, person, handle, mentions, guidance, unreviewed, brand_name or "", policy_source, followup)


def draft_context(conn: Connection, facts: TurnFacts, policy: Policy, settings: Settings,
                     brand_name: str) -> DraftContext:
    turn, person = facts.turn, facts.person
    limit = settings.history_token_budget // ITEM_OVERHEAD_TOKENS + 1
    history = _history(conn, person.id, turn.id, limit)
    last_reply = next((item.text for item in history if item.kind == "reply"), None)
    if last_reply is None and len(history) == limit:  # our last reply may be older than the history loaded
        last_reply = conn.scalar(_LAST_REPLY, {"person_id": person.id})
    return DraftContext(
        brand_name=brand_name,
        voice=policy.voice_description,
        sign_off=policy.sign_off,
        platform=turn.platform,
        max_length=_room_for_draft(policy, turn.platform, settings.default_max_length),
        person=PersonContext(display_name=person.display_name or facts.handle, handle=facts.handle,
                             first_contact=person.reply_count == 0, first_seen_at=person.first_seen_at,
                             mention_count=person.mention_count, reply_count=person.reply_count,
                             last_reply_text=last_reply),
        history=history,
        mentions=[HistoryItem("mention", m.text, m.occurred_at) for m in facts.mentions],
        guidance=facts.guidance,
        now=utcnow(),
        followup=facts.followup,
        promises=[PromiseItem(p.kind, p.text, p.created_at, p.due_at, p.status)
                  for p in unsettled_promises(conn, turn.brand_id, [person.id]).get(person.id, [])],
        summary=prompt_summary(conn, person.id, turn.id, history, settings.history_token_budget),
    )


def _room_for_draft(policy: Policy, platform: str, default_max_length: int) -> int:
    """The platform's limit, less what the reviewer's sign-off will take when they add it at approval
    (a space and the sign-off with three initials, counted the way the platform counts)."""
    limit = effective_limit(policy, platform, default_max_length)
    if policy.sign_off and "{initials}" in policy.sign_off:
        limit -= count_length(platform, " " + policy.sign_off.strip().replace("{initials}", "MMM"))
    return max(1, limit)


def _history(conn: Connection, person_id: int, turn_id: int, limit: int) -> list[HistoryItem]:
    """The person's messages outside this turn and the notes about them, newest first."""
    messages = conn.execute(_MESSAGES, {"person_id": person_id, "turn_id": turn_id, "limit": limit}).all()
    notes = conn.execute(_NOTES, {"person_id": person_id, "limit": limit}).all()
    items = [HistoryItem("mention" if direction == "inbound" else "reply", text, at, iid)
             for direction, text, at, iid in messages]
    items += [HistoryItem("note", text, at) for text, at in notes]
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]
