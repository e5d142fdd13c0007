"""What the database holds about one person, found across every table, and its irreversible erasure.

This lives beside the models because it is a question about the schema as a whole: a row belongs to a person
when it carries their ``person_id``, hangs off one of their turns (``turn_id``), or, for the tables that keep
copies of other rows (jobs, webhook deliveries, the audit log), names one of those rows. A table added later
with a ``person_id`` or ``turn_id`` column is covered without a change here; the whole-database test in
``tests/integration/test_privacy.py`` searches every table for an erased person's words and handle, so a table
that keeps their text some other way fails it.

Erasure keeps what the fairness view counts and nothing that identifies anyone: the person's row (no name,
no handles), their turns (times and statuses, no conversation key), the direction, time and audience size of
each message (no text, no ids from the platform) and when each reply was approved (no text, no handle).
Everything else that belongs to them is deleted, and a reply to them not posted yet is withdrawn (``failed``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, String, Table, and_, cast, delete, false, literal, or_, select, update

from assistant.db.audit import AuditEvent
from assistant.db.base import Base
from assistant.db.jobs import Job
from assistant.db.outbox import Reply
from assistant.db.people import Interaction, Person
from assistant.db.turns import Turn
from assistant.db.webhooks import WebhookDelivery

REDACTED = {"redacted": True}
"""What stays of a JSON copy (audit data, a webhook body, a job's payload) that held the person's data."""

_KEPT_FOR_COUNTS: dict[str, dict[str, Any]] = {
    # table -> columns overwritten; the rest of the row stays for the fairness counts
    "people": {"display_name": "", "followers": None},
    "turns": {"conversation_key": None, "current_draft_id": None},
    "interactions": {"text": "", "raw": None, "url": None, "in_reply_to": None, "conversation_key": None,
                     "lang": None},
    "replies": {"text": "", "author_handle": "", "in_reply_to": "", "external_post_id": None, "url": None,
                "error": None, "draft_id": None, "decision_id": None, "lease_until": None,
                "claim_token_hash": None},
}
"""Rows redacted in place instead of deleted. ``people.followers`` goes too: the audience size the fairness
view needs is kept per message (``interactions.followers``), not per person."""
UNSENT_REPLIES = ("approved", "claimed")
"""Replies the outbox may still hand out or confirm: an erasure withdraws them."""
_COPIES = {"jobs", "webhook_deliveries", "webhook_attempts", "audit_events"}
"""Tables of copies, matched by the ids they name rather than by a person or turn column."""
_CHUNK = 500


@dataclass
class Holdings:
    """The ids of every row that belongs to a person (and to the people merged into them)."""

    person_ids: list[int]
    turn_ids: list[int] = field(default_factory=list)
    reply_ids: list[int] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)
    audit_ids: list[int] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)

    def subjects(self) -> dict[str, list[int]]:
        return {"person": self.person_ids, "turn": self.turn_ids, "reply": self.reply_ids}


def holdings(conn: Connection, brand_id: int, person_id: int) -> Holdings | None:
    """The person's rows, or None when the brand has no such living person."""
    found = conn.execute(select(Person.id).where(
        Person.id == person_id, Person.brand_id == brand_id, Person.merged_into_id.is_(None),
        Person.erased_at.is_(None))).first()
    if found is None:
        return None
    people = [person_id] + list(conn.execute(select(Person.id).where(Person.merged_into_id == person_id)).scalars())
    held = Holdings(person_ids=people)
    held.turn_ids = _ids(conn, select(Turn.id).where(Turn.person_id.in_(people)))
    held.reply_ids = _ids(conn, select(Reply.id).where(Reply.person_id.in_(people)))
    held.delivery_ids = [row.id for row in conn.execute(
        select(WebhookDelivery.id, WebhookDelivery.payload).where(WebhookDelivery.brand_id == brand_id))
        if _names_any(row.payload.get("data") if isinstance(row.payload, dict) else None, held)]
    subjects = held.subjects()
    held.audit_ids = _ids(conn, select(AuditEvent.id).where(AuditEvent.brand_id == brand_id, or_(
        *[and_(AuditEvent.subject_type == kind, AuditEvent.subject_id.in_(ids))
          for kind, ids in subjects.items() if ids] or [false()])))
    held.job_ids = _ids(conn, select(Job.id).where(or_(
        and_(Job.kind != "deliver_webhook", Job.subject_id.in_(held.turn_ids)),
        and_(Job.kind == "deliver_webhook", Job.subject_id.in_(held.delivery_ids)))))
    return held


def export_rows(conn: Connection, held: Holdings) -> dict[str, list[dict[str, Any]]]:
    """Every row that belongs to the person, by table, as stored (times as ISO 8601)."""
    exported: dict[str, list[dict[str, Any]]] = {}
    for table in Base.metadata.sorted_tables:
        where = _belongs(table, held)
        rows = [] if where is None else [_plain(row._mapping) for row in conn.execute(select(table).where(where))]
        if rows:
            exported[table.name] = rows
    return exported


def erase_rows(conn: Connection, held: Holdings, *, at: dt.datetime) -> dict[str, int]:
    """Delete or redact every row that belongs to the person; returns how many rows of each table changed."""
    changed: dict[str, int] = {}
    # replies approved for them but not posted yet are withdrawn: no outbox client is handed one any more, and
    # one that holds a claim cannot confirm it
    conn.execute(update(Reply).where(Reply.turn_id.in_(held.turn_ids), Reply.status.in_(UNSENT_REPLIES))
                 .values(status="failed"))
    for name, values in _KEPT_FOR_COUNTS.items():   # first: they stop pointing at drafts and decisions
        table = Base.metadata.tables[name]
        _count(changed, name, conn.execute(update(table).where(_belongs(table, held)).values(values)).rowcount)
    for table in reversed(Base.metadata.sorted_tables):   # children before the rows they point at
        if table.name in _KEPT_FOR_COUNTS or table.name in _COPIES:
            continue
        where = _belongs(table, held)
        if where is not None:
            _count(changed, table.name, conn.execute(delete(table).where(where)).rowcount)
    # The platform's message ids identify the person too; they stay unique per brand by the row's own id, and a
    # mention sent again with its old id is a new mention from a new person.
    conn.execute(update(Interaction).where(Interaction.person_id.in_(held.person_ids))
                 .values(external_id=literal("erased:") + cast(Interaction.id, String)))
    conn.execute(update(Person).where(Person.id.in_(held.person_ids)).values(erased_at=at, merged_into_id=None))
    jobs, deliveries, audit = (Base.metadata.tables[name] for name in ("jobs", "webhook_deliveries", "audit_events"))
    for chunk in _chunks(held.job_ids):   # queued work for them is cancelled; a running job finds the turn closed
        _count(changed, "jobs", conn.execute(delete(jobs).where(jobs.c.id.in_(chunk), jobs.c.status != "running"))
               .rowcount)
        conn.execute(update(jobs).where(jobs.c.id.in_(chunk)).values(payload=REDACTED))
    for chunk in _chunks(held.delivery_ids):   # events about them are not sent any more, and keep no content
        _count(changed, "webhook_deliveries", conn.execute(update(deliveries).where(deliveries.c.id.in_(chunk))
                                                           .values(payload=REDACTED)).rowcount)
        conn.execute(update(deliveries).where(deliveries.c.id.in_(chunk), deliveries.c.status == "pending")
                     .values(status="failed", last_error="cancelled: the person was erased"))
    for chunk in _chunks(held.audit_ids):   # the log keeps who did what when, not the words
        _count(changed, "audit_events", conn.execute(update(audit).where(audit.c.id.in_(chunk))
                                                     .values(data=REDACTED)).rowcount)
    return changed


def _belongs(table: Table, held: Holdings) -> Any:
    """The rows of ``table`` that are the person's (a condition), or None when the table has none of theirs."""
    columns = table.c
    if table.name == "people":
        return columns.id.in_(held.person_ids)
    if table.name == "turns":
        return columns.person_id.in_(held.person_ids)
    by_id = {"jobs": held.job_ids, "webhook_deliveries": held.delivery_ids, "audit_events": held.audit_ids}
    if table.name in by_id:
        return columns.id.in_(by_id[table.name]) if by_id[table.name] else None
    if table.name == "webhook_attempts":
        return columns.delivery_id.in_(held.delivery_ids) if held.delivery_ids else None
    conditions = []
    if "person_id" in columns:
        conditions.append(columns.person_id.in_(held.person_ids))
    if "turn_id" in columns and held.turn_ids:
        conditions.append(columns.turn_id.in_(held.turn_ids))
    return or_(*conditions) if conditions else None


def _names_any(data: Any, held: Holdings) -> bool:
    """Whether a webhook body's ``data`` names one of the person's rows."""
    if not isinstance(data, dict):
        return False
    return (data.get("person_id") in held.person_ids or data.get("turn_id") in held.turn_ids
            or data.get("reply_id") in held.reply_ids or data.get("id") in held.reply_ids)


def _ids(conn: Connection, query: Any) -> list[int]:
    return list(conn.execute(query).scalars())


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def _count(changed: dict[str, int], name: str, rows: int) -> None:
    if rows:
        changed[name] = changed.get(name, 0) + rows


def _plain(row: Any) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value
            for key, value in row.items()}
