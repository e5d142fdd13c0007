"""Reading and tending people: profiles, history pages, notes, the do-not-reply flag, merging."""

from __future__ import annotations

import datetime as dt

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from sqlalchemy import (Connection, Row, and_, bindparam, exists, false, insert, literal_column, null, or_, select,
                        true, union_all, update)

from assistant.audit import record
from assistant.auth.principal import Principal
from assistant.db import Database, reads
from assistant.db.base import UTCDateTime, utcnow
from assistant.db.locking import for_update
from assistant.db.people import Handle, Interaction, Note, Person
from assistant.db.person_rows import move_person_rows, move_person_rows_back
from assistant.db.tenancy import User
from assistant.errors import NotFound, ValidationFailed
from assistant.validation import clean_text, handle_key, platform_token
from assistant.pagination import AfterId, Instant, Page, Position, RowId, decode_cursor, encode_cursor
from assistant.people.schemas import HandleOut, HistoryItem, NoteOut, PersonOut

# Within one instant, notes sort before messages and messages by id; the cursor carries all three.
_NOTE_RANK, _MESSAGE_RANK = 0, 1


class AfterHistoryItem(Position):
    """Where a history page ended: (time, note or message, id), newest first."""

    at: Instant
    rank: Annotated[int, msgspec.Meta(ge=_NOTE_RANK, le=_MESSAGE_RANK)]
    id: RowId


PROFILE_COLUMNS = (Person.id, Person.display_name, Person.do_not_reply, Person.first_seen_at, Person.last_seen_at,
                   Person.mention_count, Person.reply_count, Person.followers)
"""The columns of ``Person`` a profile shows: select them to give ``profiles`` rows."""
_PERSON = select(*PROFILE_COLUMNS)


def load_person(conn: Connection, brand_id: int, person_id: int) -> Row[Any]:
    """The person's own columns (those ``profiles`` reads); a merged-away person or another brand's is 404."""
    person = conn.execute(_PERSON.where(Person.id == person_id, Person.brand_id == brand_id,
                                        Person.merged_into_id.is_(None), Person.erased_at.is_(None))).first()
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


def profiles(conn: Connection, people: Sequence[Any]) -> list[PersonOut]:
    """Profiles for many people (rows or objects with the person's columns) in two queries, whatever their
    number."""
    ids = [p.id for p in people]
    handles: dict[int, list[HandleOut]] = {i: [] for i in ids}
    notes: dict[int, list[NoteOut]] = {i: [] for i in ids}
    if ids:
        for person_id, platform, handle in conn.execute(
                select(Handle.person_id, Handle.platform, Handle.handle).where(Handle.person_id.in_(ids))
                .order_by(Handle.id)):
            handles[person_id].append(HandleOut(platform, handle))
        for person_id, note_id, text, at, email in conn.execute(
                select(Note.person_id, Note.id, Note.text, Note.created_at, User.email)
                .outerjoin(User, User.id == Note.author_user_id)
                .where(Note.person_id.in_(ids)).order_by(Note.created_at.desc(), Note.id.desc())):
            notes[person_id].append(NoteOut(note_id, text, at, email))
    return [PersonOut(id=p.id, display_name=p.display_name, handles=handles[p.id], do_not_reply=p.do_not_reply,
                      first_contact=p.reply_count == 0, first_seen_at=p.first_seen_at, last_seen_at=p.last_seen_at,
                      mention_count=p.mention_count, reply_count=p.reply_count, followers=p.followers,
                      notes=notes[p.id]) for p in people]


def recent_histories(conn: Connection, person_ids: Sequence[int], limit: int = 20) -> dict[int, list[Any]]:
    """The newest ``limit`` messages of each of many people, newest first, in ONE statement whatever the number
    of people: a UNION ALL of per-person index range scans (``ix_interactions_person_history``), so a person
    with thousands of messages costs the same as one with twenty. Rows carry ``id, person_id, direction,
    platform, text, occurred_at, turn_id``."""
    found: dict[int, list[Any]] = {p: [] for p in person_ids}
    ids = sorted(set(person_ids))
    if not ids:
        return found
    cols = (Interaction.id, Interaction.person_id, Interaction.direction, Interaction.platform, Interaction.text,
            Interaction.occurred_at, Interaction.turn_id)
    parts = [select(*cols).where(Interaction.person_id == pid)
             .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit).subquery()
             for pid in ids]
    query = union_all(*(select(*part.c) for part in parts)) if len(parts) > 1 else select(*parts[0].c)
    for row in conn.execute(query).all():
        found[row.person_id].append(row)
    for rows in found.values():
        rows.sort(key=lambda r: (r.occurred_at, r.id), reverse=True)
    return found


async def get_person(db: Database, brand_id: int, person_id: int) -> PersonOut:
    return await db.run_read(_person_profile, brand_id, person_id)


def _person_profile(conn: Connection, brand_id: int, person_id: int) -> PersonOut:
    return profiles(conn, [load_person(conn, brand_id, person_id)])[0]


async def find_people(db: Database, brand_id: int, *, platform: str | None, handle: str | None, limit: int,
                      cursor: str | None) -> Page[PersonOut]:
    after = decode_cursor(cursor, AfterId)
    query = _PERSON.where(Person.brand_id == brand_id, Person.merged_into_id.is_(None), Person.erased_at.is_(None))
    if platform is not None or handle is not None:
        handles = select(Handle.person_id).where(Handle.brand_id == brand_id)
        if platform is not None:
            handles = handles.where(Handle.platform == platform_token(platform))
        if handle is not None:
            handles = handles.where(Handle.handle == handle_key(handle, "handle"))
        query = query.where(Person.id.in_(handles))
    if after is not None:
        query = query.where(Person.id > after.id)
    return await db.run_read(_people_page, query.order_by(Person.id).limit(limit + 1), limit)


def _people_page(conn: Connection, query: Any, limit: int) -> Page[PersonOut]:
    people = conn.execute(query).all()
    return Page(items=profiles(conn, people[:limit]),
                next_cursor=encode_cursor(AfterId(people[limit - 1].id)) if len(people) > limit else None)


async def history(db: Database, brand_id: int, person_id: int, *, limit: int, cursor: str | None) -> Page[HistoryItem]:
    """Messages and notes, newest first, by keyset: a page costs the same on the first page and the last."""
    return await db.run_read(_history, brand_id, person_id, limit, decode_cursor(cursor, AfterHistoryItem))


_PERSON_EXISTS = select(Person.id).where(Person.id == bindparam("person_id"), Person.brand_id == bindparam("brand_id"),
                                         Person.merged_into_id.is_(None), Person.erased_at.is_(None))
_MESSAGE_COLUMNS = (Interaction.id, Interaction.direction, Interaction.text, Interaction.occurred_at,
                    Interaction.platform, Interaction.external_id, Interaction.in_reply_to, Interaction.turn_id)


_PAGE = {"person_id": bindparam("person_id"), "limit": bindparam("limit")}
_AFTER = {"at": bindparam("after_at", type_=UTCDateTime()), "id": bindparam("after_id")}


def _pages(columns: tuple[Any, ...], at_column: Any, id_column: Any, rank: int) -> dict[int | None, Any]:
    """A branch's page statements, built once: the first page (key None) and the pages after a cursor, keyed by
    the cursor's rank. Rows strictly after the cursor in (time desc, rank desc, id desc) order: at the cursor's
    instant, this branch's rows with a smaller id if the cursor is of this branch's rank, else all of them or
    none (the ranks decide)."""
    first = (select(*columns).where(columns[0].table.c.person_id == _PAGE["person_id"])
             .order_by(at_column.desc(), id_column.desc()).limit(_PAGE["limit"]))
    pages: dict[int | None, Any] = {None: first}
    for after_rank in (_NOTE_RANK, _MESSAGE_RANK):
        same_instant = id_column < _AFTER["id"] if rank == after_rank else true() if rank < after_rank else false()
        pages[after_rank] = first.where(or_(at_column < _AFTER["at"], and_(at_column == _AFTER["at"], same_instant)))
    return pages


_MESSAGES = _pages(_MESSAGE_COLUMNS, Interaction.occurred_at, Interaction.id, _MESSAGE_RANK)
_NOTES = _pages((Note.id, Note.text, Note.created_at), Note.created_at, Note.id, _NOTE_RANK)
_PERSON_IN_BRAND = exists(_PERSON_EXISTS)


def _page_of_both(after_rank: int | None) -> Any:
    """Both branches' pages in one statement, each row with its rank, for the person only if they are the
    brand's (else no rows): one statement instead of three (one round trip on PostgreSQL)."""
    messages = _MESSAGES[after_rank].where(_PERSON_IN_BRAND).subquery()
    notes = _NOTES[after_rank].where(_PERSON_IN_BRAND).subquery()
    return union_all(
        select(literal_column(str(_MESSAGE_RANK)).label("rank"), *messages.c),
        select(literal_column(str(_NOTE_RANK)), notes.c.id, null(), notes.c.text, notes.c.created_at, null(), null(),
               null(), null()))


_PAGES = {after_rank: _page_of_both(after_rank) for after_rank in (None, _NOTE_RANK, _MESSAGE_RANK)}
"""Every page's statement, built once: building a statement and its cache key on every request cost about a
third of a history request's time. They run through ``reads.rows`` (plain tuples, on SQLite straight on
sqlite3)."""


def _history(conn: Connection, brand_id: int, person_id: int, limit: int,
             after: AfterHistoryItem | None) -> Page[HistoryItem]:
    """One read transaction, plain columns (no ORM objects): a page of messages and notes of the brand's person,
    and only when there is none, whether the person is theirs at all."""
    page_of: dict[str, Any] = {"person_id": person_id, "brand_id": brand_id, "limit": limit + 1}
    if after is not None:
        page_of.update(after_at=after.at, after_id=after.id)
    found = reads.rows(conn, _PAGES[None if after is None else after.rank], page_of)
    if not found and not reads.rows(conn, _PERSON_EXISTS, {"person_id": person_id, "brand_id": brand_id}):
        raise NotFound(f"no person {person_id}")
    found.sort(key=lambda row: (row[4], row[0], row[1]), reverse=True)
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        rank, last_id, _, _, at = page[-1][:5]
        next_cursor = encode_cursor(AfterHistoryItem(at, rank, last_id))
    return Page(items=[
        HistoryItem(kind="note", id=iid, text=text, at=at) if rank == _NOTE_RANK else HistoryItem(
            kind="mention" if direction == "inbound" else "reply", id=iid, text=text, at=at, platform=platform,
            external_id=external_id, in_reply_to=in_reply_to, turn_id=turn_id)
        for rank, iid, direction, text, at, platform, external_id, in_reply_to, turn_id in page],
        next_cursor=next_cursor)


async def update_person(db: Database, actor: Principal, person_id: int, *, display_name: str | None,
                        do_not_reply: bool | None) -> PersonOut:
    changes: dict[str, Any] = {}
    if display_name is not None:
        changes["display_name"] = clean_text(display_name, "display_name").strip()
    if do_not_reply is not None:
        changes["do_not_reply"] = do_not_reply
    return await db.run_write(_update_person, actor, person_id, changes)


def _update_person(conn: Connection, actor: Principal, person_id: int, changes: dict[str, Any]) -> PersonOut:
    load_person(conn, actor.brand_id, person_id)
    if changes:
        conn.execute(update(Person).where(Person.id == person_id).values(**changes))
        record(conn, actor, "person.updated", "person", person_id, **changes)
    return _person_profile(conn, actor.brand_id, person_id)


async def add_note(db: Database, actor: Principal, person_id: int, text: str) -> NoteOut:
    return await db.run_write(_add_note, actor, person_id, clean_text(text).strip())


def _add_note(conn: Connection, actor: Principal, person_id: int, text: str) -> NoteOut:
    load_person(conn, actor.brand_id, person_id)
    now = utcnow()
    note_id = conn.execute(insert(Note).values(brand_id=actor.brand_id, person_id=person_id,
                                               author_user_id=actor.id, text=text, created_at=now)
                           .returning(Note.id)).scalar_one()
    record(conn, actor, "person.note_added", "person", person_id, note_id=note_id)
    return NoteOut(note_id, text, now, actor.label)


async def merge_people(db: Database, actor: Principal, person_id: int, other_id: int) -> PersonOut:
    """Fold ``other`` into ``person``: handles, messages, notes and turns move; counts add up."""
    if person_id == other_id:
        raise ValidationFailed.field("other_id", "a person cannot be merged with themselves")
    return await db.run_write(_merge_people, actor, person_id, other_id)


def _merge_people(conn: Connection, actor: Principal, person_id: int, other_id: int) -> PersonOut:
    fold_person(conn, actor.brand_id, person_id, other_id)
    record(conn, actor, "person.merged", "person", person_id, other_id=other_id)
    return _person_profile(conn, actor.brand_id, person_id)


_KEPT = ("first_seen_at", "last_seen_at", "mention_count", "reply_count", "do_not_reply")


def fold_person(conn: Connection, brand_id: int, person_id: int, other_id: int) -> dict[str, Any]:
    """The merge rule on a connection: ``other``'s rows move to ``person``, counts add up, ``other`` points
    at ``person``. Answers what moved and what ``person`` was, so ``unfold_person`` can undo it."""
    if person_id == other_id:
        raise ValidationFailed.field("other_id", "a person cannot be merged with themselves")
    # Both people locked (in id order) before their rows move: counters read here are added up below, and ingest
    # locks people before their turns too.
    both = for_update(select(Person.id, *(getattr(Person, k) for k in _KEPT)).where(
        Person.id.in_((person_id, other_id)), Person.brand_id == brand_id, Person.merged_into_id.is_(None))
        .order_by(Person.id))
    found = {row.id: row for row in conn.execute(both)}
    for pid in (person_id, other_id):
        if pid not in found:
            raise NotFound(f"no person {pid}")
    person, other = found[person_id], found[other_id]
    moved: dict[str, Any] = dict(move_person_rows(conn, other_id, person_id))
    conn.execute(update(Person).where(Person.id == person_id).values(
        first_seen_at=min(person.first_seen_at, other.first_seen_at),
        last_seen_at=max(person.last_seen_at, other.last_seen_at),
        mention_count=Person.mention_count + other.mention_count, reply_count=Person.reply_count + other.reply_count,
        do_not_reply=person.do_not_reply or other.do_not_reply))
    conn.execute(update(Person).where(Person.id == other_id).values(merged_into_id=person_id))
    moved["person_before"] = {"first_seen_at": person.first_seen_at.isoformat(), "do_not_reply": person.do_not_reply,
                              "last_seen_at": person.last_seen_at.isoformat(),
                              "merged_last_seen_at": max(person.last_seen_at, other.last_seen_at).isoformat()}
    moved["other_counts"] = {"mention_count": other.mention_count, "reply_count": other.reply_count}
    return moved


def _same_instant(a: dt.datetime, b: dt.datetime) -> bool:
    """SQLite hands back naive UTC times, PostgreSQL aware ones: compare them as instants."""
    def aware(t: dt.datetime) -> dt.datetime:
        return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
    return aware(a) == aware(b)


def unfold_person(conn: Connection, brand_id: int, person_id: int, other_id: int, moved: dict[str, Any]) -> None:
    """Undo ``fold_person``: the rows that moved go back, ``other`` stands alone again, ``person``'s counts lose
    what ``other`` brought (what either gained since stays where it landed)."""
    other = conn.execute(select(Person.merged_into_id).where(Person.id == other_id, Person.brand_id == brand_id)).first()
    if other is None or other.merged_into_id != person_id:
        raise NotFound(f"person {other_id} is not merged into {person_id}")
    move_person_rows_back(conn, moved, person_id, other_id)
    before, counts = moved["person_before"], moved["other_counts"]
    restored: dict[str, Any] = {}
    if "last_seen_at" in before:  # unchanged since the merge: it was other's, so it goes back to person's own
        current = conn.scalar(select(Person.last_seen_at).where(Person.id == person_id))
        if current is not None and _same_instant(current, dt.datetime.fromisoformat(before["merged_last_seen_at"])):
            restored["last_seen_at"] = dt.datetime.fromisoformat(before["last_seen_at"])
    conn.execute(update(Person).where(Person.id == person_id).values(
        mention_count=Person.mention_count - counts["mention_count"],
        reply_count=Person.reply_count - counts["reply_count"],
        first_seen_at=dt.datetime.fromisoformat(before["first_seen_at"]), do_not_reply=before["do_not_reply"],
        **restored))
    conn.execute(update(Person).where(Person.id == other_id).values(merged_into_id=None))
