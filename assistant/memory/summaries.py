"""Long histories remembered: a relationship summary of the part of a person's history that no longer fits
the prompt's token budget.

While a draft's context is read, ``prompt_summary`` says which stored summary goes into the prompt (ahead of
the newest messages) and whether it is due: there is older history outside the budget that no summary covers
yet, ``SUMMARY_REFRESH_ITEMS`` messages of it or more (or any at all when there is no summary). A due summary
is written before the draft (``refresh``): by the model from those older messages, or without a model as a
plain extract (the person's questions and our promises), labelled as such. Every read is keyed by the one
person, so a summary never carries another person's words. A reviewer may rewrite it on the person's page;
the next refresh starts from their text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import regex
from sqlalchemy import Connection, func, select

from assistant.audit import record
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.memory import Promise, RelationshipSummary
from assistant.db.people import Interaction, Person
from assistant.db.tenancy import Brand
from assistant.model.budget import fit_history
from assistant.model.history import HistoryItem
from assistant.model.templates import environment
from assistant.model.client import ModelClient
from assistant.errors import Forbidden, ModelUnavailable, NotFound, ValidationFailed
from assistant.validation import clean_text

SUMMARY_REFRESH_ITEMS = 10
"""Older messages not yet covered that make a summary due again."""
SUMMARY_SOURCE_ITEMS = 200
"""The most older messages one summary is written from (the newest of them)."""
SUMMARY_MAX_CHARS = 2000
EXTRACT_ITEMS = 6
SOURCES = ("model", "extract", "human")
_QUESTION = regex.compile(r"[^.!?\n]*\?")


class SummaryOut(msgspec.Struct):
    text: str
    source: str
    covers_until: dt.datetime | None
    updated_at: dt.datetime
    model: str | None = None
    covers: int = 0
    """How many messages it was written from."""


class SummaryIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


@dataclass(frozen=True)
class PromptSummary:
    """What the drafting prompt carries of the summary, and whether a fresh one is due."""

    text: str
    source: str
    updated_at: dt.datetime
    due: bool = False
    before: dt.datetime | None = None
    """Messages older than this do not fit the prompt: what a fresh summary is written from."""

    @property
    def label(self) -> str:
        return {"model": "summary written by the model", "extract": "plain extract, no model",
                "human": "summary written by our team"}.get(self.source, self.source)


def _row_out(row: object) -> SummaryOut:
    r = row._mapping  # type: ignore[attr-defined]
    return SummaryOut(r["text"], r["source"], r["covers_until"], r["updated_at"], r["model"], len(r["covers"] or []))


def _person_in_brand(conn: Connection, brand_id: int, person_id: int) -> None:
    if conn.scalar(select(Person.id).where(Person.id == person_id, Person.brand_id == brand_id,
                                           Person.merged_into_id.is_(None))) is None:
        raise NotFound(f"no person {person_id}")


_SUMMARY = RelationshipSummary.__table__


def person_summary(conn: Connection, brand_id: int, person_id: int, *, checked: bool = False) -> SummaryOut | None:
    if not checked:
        _person_in_brand(conn, brand_id, person_id)
    row = conn.execute(select(_SUMMARY).where(RelationshipSummary.person_id == person_id,
                                              RelationshipSummary.brand_id == brand_id)).first()
    return None if row is None else _row_out(row)


def edit_summary(conn: Connection, actor: Principal, person_id: int, text: str) -> SummaryOut:
    """A reviewer's own words for the summary (source ``human``); what it covers stays as it was."""
    if not actor.is_user:
        raise Forbidden("Only a reviewer or admin may edit a summary; API keys cannot")
    text = clean_text(text)
    if len(text) > SUMMARY_MAX_CHARS:
        raise ValidationFailed.field("text", f"must be at most {SUMMARY_MAX_CHARS} characters")
    _person_in_brand(conn, actor.brand_id, person_id)
    now = utcnow()
    _store(conn, actor.brand_id, person_id, text=text, source="human", model=None, covers=None, covers_until=None,
           user_id=actor.id, now=now)
    record(conn, actor, "summary.edited", "person", person_id, brand_id=actor.brand_id)
    return _row_out(conn.execute(select(_SUMMARY).where(RelationshipSummary.person_id == person_id)).one())


def _store(conn: Connection, brand_id: int, person_id: int, *, text: str, source: str, model: str | None,
           covers: list[int] | None, covers_until: dt.datetime | None, user_id: int | None, now: dt.datetime) -> None:
    values = {"text": text, "source": source, "model": model, "updated_by_user_id": user_id, "updated_at": now}
    if covers is not None:
        values |= {"covers": covers, "covers_until": covers_until}
    found = conn.scalar(select(RelationshipSummary.id).where(RelationshipSummary.person_id == person_id)
                        .with_for_update())
    if found is None:
        conn.execute(_SUMMARY.insert().values(brand_id=brand_id, person_id=person_id, created_at=now,
                                              **({"covers": [], "covers_until": None} | values)))
    else:
        conn.execute(_SUMMARY.update().where(RelationshipSummary.id == found).values(**values))


# In the drafting context ----------------------------------------------------------------------------------

def prompt_summary(conn: Connection, person_id: int, turn_id: int, history: Sequence[HistoryItem],
                   history_token_budget: int) -> PromptSummary | None:
    """The stored summary for the prompt, and whether a fresh one is due. ``history`` is the newest-first
    history the draft loaded, one item more than could ever fit when there is more: when the budget cuts it,
    the messages older than the oldest item kept are what a summary must cover."""
    kept = fit_history(list(history), history_token_budget)
    row = conn.execute(select(RelationshipSummary.text, RelationshipSummary.source, RelationshipSummary.updated_at,
                              RelationshipSummary.covers_until).where(RelationshipSummary.person_id == person_id)).first()
    uncovered, before = 0, None
    if len(kept) < len(history):
        before = kept[0].at if kept else history[0].at + dt.timedelta(microseconds=1)
        older = select(func.count()).select_from(Interaction).where(
            Interaction.person_id == person_id, Interaction.turn_id.is_distinct_from(turn_id),
            Interaction.occurred_at < before)
        if row is not None and row.covers_until is not None:
            older = older.where(Interaction.occurred_at > row.covers_until)
        uncovered = conn.scalar(older) or 0
    due = uncovered >= (SUMMARY_REFRESH_ITEMS if row is not None and row.covers_until is not None else 1)
    if row is None:
        return PromptSummary("", "", utcnow(), due=True, before=before) if due else None
    return PromptSummary(row.text, row.source, row.updated_at, due=due, before=before)


# Writing one ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SummarySource:
    """What a summary is written from: the person's older messages (oldest first) and what we promised."""

    person_id: int
    brand_id: int
    brand_name: str
    display_name: str
    items: list[tuple[int, str, str, dt.datetime]]
    """(interaction id, ``mention`` or ``reply``, text, when)."""
    promises: list[tuple[str, str, dt.datetime]]
    """(status, words, when)."""
    previous: str | None


def summary_source(conn: Connection, person_id: int, before: dt.datetime | None) -> SummarySource | None:
    """The person's messages older than ``before`` (all when None), newest ``SUMMARY_SOURCE_ITEMS`` of them."""
    person = conn.execute(select(Person.brand_id, Person.display_name, Brand.name).join(Brand, Brand.id == Person.brand_id)
                          .where(Person.id == person_id)).first()
    if person is None:
        return None
    query = select(Interaction.id, Interaction.direction, Interaction.text, Interaction.occurred_at).where(
        Interaction.person_id == person_id)
    if before is not None:
        query = query.where(Interaction.occurred_at < before)
    rows = conn.execute(query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
                        .limit(SUMMARY_SOURCE_ITEMS)).all()
    promises = conn.execute(select(Promise.status, Promise.text, Promise.created_at).where(
        Promise.person_id == person_id).order_by(Promise.created_at.desc()).limit(EXTRACT_ITEMS)).all()
    previous = conn.scalar(select(RelationshipSummary.text).where(RelationshipSummary.person_id == person_id))
    items = [(r.id, "mention" if r.direction == "inbound" else "reply", r.text, r.occurred_at) for r in reversed(rows)]
    return SummarySource(person_id, person.brand_id, person.name or "", person.display_name or "", items,
                         [(p.status, p.text, p.created_at) for p in promises], previous)


def extract(source: SummarySource) -> str:
    """The summary without a model: the person's questions and our promises, newest first, labelled."""
    questions = []
    for _, kind, text, at in reversed(source.items):
        if kind != "mention":
            continue
        for question in _QUESTION.findall(text):
            question = " ".join(question.split())
            if len(question) > 3 and question not in [q for q, _ in questions]:
                questions.append((question, at))
        if len(questions) >= EXTRACT_ITEMS:
            break
    lines = ["Plain extract (no model): their questions and our promises."]
    if questions:
        lines.append("Their questions:")
        lines += [f"- {at:%d %b %Y}: {q[:200]}" for q, at in questions[:EXTRACT_ITEMS]]
    if source.promises:
        lines.append("Our promises:")
        lines += [f"- {at:%d %b %Y} ({status}): {text[:200]}" for status, text, at in source.promises]
    if len(lines) == 1:
        lines.append(f"{len(source.items)} older messages; no questions or promises found in them.")
    return "\n".join(lines)[:SUMMARY_MAX_CHARS]


def summary_messages(source: SummarySource) -> list[dict[str, str]]:
    variables = {"brand_name": source.brand_name, "display_name": source.display_name, "items": source.items,
                 "previous": source.previous, "max_chars": SUMMARY_MAX_CHARS}
    return [{"role": "system", "content": environment.get_template("summarise_person.system.j2").render(variables)},
            {"role": "user", "content": environment.get_template("summarise_person.user.j2").render(variables)}]


def store_written(conn: Connection, source: SummarySource, text: str, *, written_by: str, model: str | None) -> None:
    """Store a summary written from ``source`` (by the model or as an extract)."""
    covers = [item[0] for item in source.items]
    covers_until = max((item[3] for item in source.items), default=None)
    _store(conn, source.brand_id, source.person_id, text=text.strip()[:SUMMARY_MAX_CHARS], source=written_by,
           model=model, covers=covers, covers_until=covers_until, user_id=None, now=utcnow())


# The service edge -----------------------------------------------------------------------------------------

async def refresh(db: Database, model: ModelClient | None, person_id: int, before: dt.datetime | None) -> str | None:
    """Write the person's summary from their messages older than ``before``: by the model when there is one
    (a plain extract when it stays down), else as a plain extract. Answers the source written, None if none."""
    source = await db.run_read(summary_source, person_id, before)
    if source is None or not source.items:
        return None
    text, written_by, model_name = extract(source), "extract", None
    if model is not None:
        try:
            result = await model.complete(summary_messages(source))
        except ModelUnavailable:
            pass
        else:
            if result.text.strip():
                text, written_by, model_name = result.text, "model", result.model
    await db.run_write(lambda conn: store_written(conn, source, text, written_by=written_by, model=model_name))
    return written_by


async def get_summary(db: Database, brand_id: int, person_id: int) -> SummaryOut:
    found = await db.run_read(person_summary, brand_id, person_id)
    if found is None:
        raise NotFound(f"no summary of person {person_id} yet: their history still fits the prompt")
    return found


async def put_summary(db: Database, actor: Principal, person_id: int, text: str) -> SummaryOut:
    return await db.run_write(edit_summary, actor, person_id, text)


__all__ = ["PromptSummary", "refresh", "SummaryIn", "SummaryOut", "SummarySource", "edit_summary", "extract", "get_summary",
           "person_summary", "prompt_summary", "put_summary", "store_written", "summary_messages", "summary_source"]
