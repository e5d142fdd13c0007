"""History import (SPEC 5 and 6): earlier messages both ways, from NDJSON or a customer-support tweet dump.

History only: interactions, people and their counters; never turns, drafts or jobs. The work goes a chunk at a
time (a few thousand rows, one transaction, ``executemany`` inserts), people through ``resolve_people`` and
counters through ``tally``/``apply_activity``, exactly as live ingest does. Re-running an import is safe: a
message already stored for the brand (same platform and external id) is counted as a duplicate.

The person of an outbound message (our reply) is its explicit ``recipient``, else the person of the message it
answers (``in_reply_to``), found in the same chunk or in the database. A reply whose parent comes later in the
file waits, and is tried again at the end; one whose parent never shows up is reported invalid.

Parsers turn input into ``Record`` (valid) or ``Invalid`` (line number and field errors); a bad row never sinks
the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError

from assistant import validation
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.bulk import executemany
from assistant.db.lookup import platform_keys, rows_by_platform_keys
from assistant.db.people import Interaction
from assistant.errors import ValidationFailed
from assistant.people.identity import Sighting, apply_activity, resolve_people, tally
from assistant.problems import field_errors

CHUNK_ROWS = 5000
KEPT_INVALID = 100
"""Invalid lines reported one by one; the rest are counted."""
LOOKUP = 2000
"""Keys per ``IN (...)`` lookup: well under SQLite's 32,766 bound parameters."""

Key = tuple[str, str]
"""(platform, external_id)."""


# ---------------------------------------------------------------------------------------------- input shape

class HistoryLineIn(msgspec.Struct, forbid_unknown_fields=True):
    """One NDJSON line."""

    direction: Literal["inbound", "outbound"]
    platform: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    external_id: validation.Ident
    text: validation.Text
    created_at: dt.datetime
    author: validation.AuthorIn | None = None
    """Who wrote an inbound message (required for inbound)."""
    recipient: validation.AuthorIn | None = None
    """Whom an outbound message answers, when ``in_reply_to`` does not say."""
    in_reply_to: validation.Ident | None = None
    conversation_id: validation.Ident | None = None
    url: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    lang: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class LineError(msgspec.Struct):
    line: int
    errors: list[dict[str, str]]


class ImportResult(msgspec.Struct):
    imported: int
    duplicates: int
    invalid: list[LineError]
    """The first ``KEPT_INVALID`` invalid lines, by line number."""
    invalid_count: int = 0
    """Every invalid line, counted."""


@dataclass
class Record:
    """One valid message to import."""

    line: int
    direction: str
    platform: str
    external_id: str
    text: str
    at: dt.datetime
    handle: str | None
    """The person's handle: the author of an inbound message, the recipient of an outbound one (if given)."""
    handle_external_id: str | None = None
    display_name: str | None = None
    followers: int | None = None
    in_reply_to: str | None = None
    conversation: str | None = None
    """The explicit conversation id (NDJSON) or the thread root (tweet dumps)."""
    url: str | None = None
    lang: str | None = None
    raw: dict[str, Any] | None = None

    @property
    def key(self) -> Key:
        return self.platform, self.external_id

    @property
    def inbound(self) -> bool:
        return self.direction == "inbound"


@dataclass
class Invalid:
    line: int
    errors: list[dict[str, str]]


@dataclass
class Report:
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    """The first ``KEPT_INVALID`` invalid lines by line number: a body of bad lines must not make an answer
    (and a memory) many times its size (1 MB of bad lines made a 48 MB answer)."""
    invalid_count: int = 0

    def add_invalid(self, items: Iterable[Invalid]) -> None:
        for item in items:
            self.invalid_count += 1
            self.invalid.append(item)
        if len(self.invalid) > 2 * KEPT_INVALID:
            self.invalid = sorted(self.invalid, key=lambda i: i.line)[:KEPT_INVALID]

    def result(self) -> ImportResult:
        kept = sorted(self.invalid, key=lambda i: i.line)[:KEPT_INVALID]
        return ImportResult(imported=self.imported, duplicates=self.duplicates,
                            invalid=[LineError(i.line, i.errors) for i in kept], invalid_count=self.invalid_count)


Progress = Callable[[Report], None]


# ---------------------------------------------------------------------------------------------- NDJSON

def parse_ndjson(lines: Iterable[bytes], *, now: dt.datetime | None = None) -> Iterator[Record | Invalid]:
    """One interaction per line; blank lines are skipped; line numbers count from 1."""
    now = now or utcnow()
    decoder = msgspec.json.Decoder(HistoryLineIn)
    for number, raw_line in enumerate(lines, start=1):
        item = parse_ndjson_line(decoder, number, raw_line, now)
        if item is not None:
            yield item


def parse_ndjson_line(decoder: msgspec.json.Decoder[HistoryLineIn], number: int, raw_line: bytes,
                      now: dt.datetime) -> Record | Invalid | None:
    """Line ``number`` as a record, or what is wrong with it; None for a blank line."""
    line = raw_line.strip()
    if not line:
        return None
    try:
        item = decoder.decode(line)
    except msgspec.ValidationError as exc:
        return Invalid(number, field_errors(str(exc)))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Invalid(number, [{"field": "line", "message": _json_problem(exc)}])
    try:
        return ndjson_record(item, number, now)
    except ValidationFailed as exc:
        return Invalid(number, exc.errors)


async def stream_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The lines of a body as its chunks arrive: only the line being read is held, never the whole body."""
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        end = pending.rfind(b"\n")
        if end < 0:
            continue
        complete = bytes(pending[:end])
        del pending[:end + 1]
        for line in complete.split(b"\n"):
            yield line
    if pending:
        yield bytes(pending)


def _json_problem(exc: Exception) -> str:
    text = str(exc)
    if "surrogate" in text:
        return "not valid JSON: it holds an unpaired UTF-16 surrogate escape"
    if isinstance(exc, UnicodeDecodeError) or "UTF-8" in text or "utf-8" in text:
        return "not valid UTF-8"
    return "not valid JSON: " + text.removeprefix("JSON is malformed: ")


def ndjson_record(item: HistoryLineIn, line: int, now: dt.datetime) -> Record:
    party = item.author if item.direction == "inbound" else item.recipient
    if item.direction == "inbound" and item.author is None:
        raise ValidationFailed.field("author", "an inbound message needs its author")
    if item.direction == "outbound" and item.recipient is None and item.in_reply_to is None:
        raise ValidationFailed.field("recipient", "an outbound message needs in_reply_to or a recipient")
    prefix = "author" if item.direction == "inbound" else "recipient"
    return Record(
        line=line, direction=item.direction,
        platform=validation.platform_token(item.platform),
        external_id=validation.identifier(item.external_id, "external_id"),
        text=validation.clean_text(item.text),
        at=validation.timestamp(item.created_at, now=now),
        handle=validation.handle_key(party.handle, f"{prefix}.handle") if party else None,
        handle_external_id=validation.clean_optional(party.external_id, f"{prefix}.external_id") if party else None,
        display_name=validation.clean_optional(party.display_name, f"{prefix}.display_name") if party else None,
        followers=party.followers if party else None,
        in_reply_to=validation.clean_optional(item.in_reply_to, "in_reply_to"),
        conversation=validation.clean_optional(item.conversation_id, "conversation_id"),
        url=validation.clean_optional(item.url, "url"),
        lang=validation.clean_optional(item.lang, "lang"),
        raw=msgspec.to_builtins(item),
    )


# ---------------------------------------------------------------------------------------------- tweet dumps

TWEET_COLUMNS = ("tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id",
                 "in_response_to_tweet_id")
TWEET_TIME = "%a %b %d %H:%M:%S %z %Y"


def _tweet_id(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    return value[:-2] if value.endswith(".0") else value  # ids written as floats by spreadsheet tools


def _open_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows with the line number each starts on (a quoted field may span lines)."""
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TWEET_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValidationFailed.field("file", f"the CSV lacks the columns {', '.join(missing)}")
        start = reader.line_num + 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1


def parse_tweet_csv(path: Path, *, platform: str = "x", now: dt.datetime | None = None) -> Iterator[Record | Invalid]:
    """The customer-support tweet dump: two passes, so only the reply graph stays in memory.

    Pass one learns who answers whom; pass two yields records. The conversation of every tweet is its thread
    root's id; a brand reply (``inbound`` False) goes to the customer it answers, the nearest inbound ancestor.
    """
    now = now or utcnow()
    parent: dict[str, str] = {}
    customer: dict[str, str] = {}  # tweet id -> author of an inbound tweet
    for _, row in _open_csv(path):
        tweet = _tweet_id(row.get("tweet_id"))
        if not tweet:
            continue
        up = _tweet_id(row.get("in_response_to_tweet_id"))
        if up:
            parent[tweet] = up
        if (row.get("inbound") or "").strip().lower() == "true":
            customer[tweet] = (row.get("author_id") or "").strip()

    roots: dict[str, str] = {}

    def root_of(tweet: str) -> str:
        chain = []
        current = tweet
        while current not in roots and current in parent and len(chain) < 10_000:
            chain.append(current)
            current = parent[current]
            if current in chain:  # a cycle in broken data: stop where it closes
                break
        top = roots.get(current, current)
        for seen in chain:
            roots[seen] = top
        return top

    def answered_customer(tweet: str) -> str | None:
        current, hops = parent.get(tweet), 0
        while current is not None and hops < 10_000:
            if current in customer:
                return customer[current]
            current, hops = parent.get(current), hops + 1
        return None

    for line, row in _open_csv(path):
        try:
            yield _tweet_record(row, line, platform, now, root_of, answered_customer)
        except ValidationFailed as exc:
            yield Invalid(line, exc.errors)


def _tweet_record(row: dict[str, str], line: int, platform: str, now: dt.datetime,
                  root_of: Callable[[str], str], answered_customer: Callable[[str], str | None]) -> Record:
    if None in row or any(row.get(c) is None for c in TWEET_COLUMNS):
        raise ValidationFailed.field("row", "has the wrong number of columns")
    tweet = _tweet_id(row["tweet_id"])
    if not tweet:
        raise ValidationFailed.field("tweet_id", "must not be empty")
    inbound_flag = row["inbound"].strip().lower()
    if inbound_flag not in ("true", "false"):
        raise ValidationFailed.field("inbound", "must be True or False")
    at = tweet_time(row["created_at"])
    try:
        text = html.unescape(row["text"]).encode("utf-8").decode("utf-8")
    except UnicodeError:
        raise ValidationFailed.field("text", "is not valid UTF-8") from None
    if len(text) > 10_000:
        raise ValidationFailed.field("text", "is longer than 10,000 characters")
    inbound = inbound_flag == "true"
    if inbound:
        handle = row["author_id"]
    else:
        found = answered_customer(tweet)
        if found is None:
            raise ValidationFailed.field("in_response_to_tweet_id", "a brand reply must answer a customer's tweet "
                                         "in the file")
        handle = found
    return Record(
        line=line, direction="inbound" if inbound else "outbound", platform=platform, external_id=tweet,
        text=validation.clean_text(text), at=validation.timestamp(at, now=now),
        handle=validation.handle_key(handle, "author_id"),
        in_reply_to=_tweet_id(row["in_response_to_tweet_id"]), conversation=root_of(tweet),
        raw={k: row[k] for k in TWEET_COLUMNS},
    )


_MONTHS = {name: n for n, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                             "Nov", "Dec"), start=1)}


def tweet_time(value: str) -> dt.datetime:
    """'Tue Oct 10 15:16:08 +0000 2017', parsed by hand (``strptime`` was a fifth of the import's time)."""
    try:
        _, month, day, clock, offset, year = value.split()
        hour, minute, second = clock.split(":")
        if offset == "+0000":
            return dt.datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second),
                               tzinfo=dt.timezone.utc)
        return dt.datetime.strptime(value.strip(), TWEET_TIME)
    except (ValueError, KeyError):
        raise ValidationFailed.field("created_at", "use the form 'Tue Oct 10 15:16:08 +0000 2017'") from None


def sniff_format(path: Path) -> str:
    """``csv`` or ``ndjson``, by extension, else by the first line."""
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".csv":
        return "csv"
    with path.open("rb") as handle:
        first = handle.readline().strip()
    if first.startswith(b"{"):
        return "ndjson"
    if b"tweet_id" in first:
        return "csv"
    raise ValidationFailed.field("file", "neither NDJSON (one JSON object a line) nor the tweet CSV layout")


def read_ndjson(path: Path) -> Iterator[Record | Invalid]:
    with path.open("rb") as handle:
        yield from parse_ndjson(handle)


# ---------------------------------------------------------------------------------------------- storing

async def import_records(db: Database, brand_id: int, items: Iterable[Record | Invalid], *,
                         chunk_rows: int = CHUNK_ROWS, one_transaction: bool = False,
                         progress: Progress | None = None, report: Report | None = None) -> Report:
    """Store valid records a chunk at a time; count duplicates; collect invalid rows (into ``report`` when
    given: what the caller already counted).

    With ``one_transaction`` (the HTTP endpoint, bounded by the 1 MiB body) it is all or nothing: a database
    failure stores none of it. Otherwise each chunk commits on its own and a rerun skips what is there.
    """
    if one_transaction:
        return await db.run_write(store_records, brand_id, items, report, chunk_rows, progress)
    report = report or Report()
    deferred: list[Record] = []
    for chunk, final in _chunks(items, report, deferred, chunk_rows):
        for attempt in (1, 2):
            try:
                outcome = await db.run_write(_store_chunk, brand_id, chunk, final)
                break
            except IntegrityError:  # a concurrent writer stored one of the same keys first (PostgreSQL)
                if attempt == 2:
                    raise
        _count(outcome, report, deferred, progress)
    return report


Outcome = tuple[int, int, list[Invalid], list[Record]]
"""What storing a chunk did: imported, duplicates, invalid rows, replies still waiting for their parent."""


def _chunks(items: Iterable[Record | Invalid], report: Report, deferred: list[Record],
            chunk_rows: int) -> Iterator[tuple[list[Record], bool]]:
    """The chunks to store, each with ``final`` (a reply still without a parent is then invalid). Invalid items
    go straight to ``report``; ``deferred`` (filled by the caller from each chunk's outcome before it asks for
    the next) holds replies whose parents came later, tried again while that makes progress."""
    chunk: list[Record] = []
    for item in items:
        report.rows += 1
        if isinstance(item, Invalid):
            report.add_invalid([item])
            continue
        chunk.append(item)
        if len(chunk) >= chunk_rows:
            yield chunk, False
            chunk = []
    if chunk:
        yield chunk, False
    while deferred:
        pending = deferred[:]
        deferred.clear()
        for start in range(0, len(pending), chunk_rows):
            yield pending[start:start + chunk_rows], False
        if len(deferred) == len(pending):
            pending = deferred[:]
            deferred.clear()
            for start in range(0, len(pending), chunk_rows):
                yield pending[start:start + chunk_rows], True


def _count(outcome: Outcome, report: Report, deferred: list[Record], progress: Progress | None) -> None:
    imported, duplicates, invalid, waiting = outcome
    report.imported += imported
    report.duplicates += duplicates
    report.add_invalid(invalid)
    deferred.extend(waiting)
    if progress:
        progress(report)


def store_records(conn: Connection, brand_id: int, items: Iterable[Record | Invalid], report: Report | None = None,
                  chunk_rows: int = CHUNK_ROWS, progress: Progress | None = None) -> Report:
    """Every record in the caller's one transaction, all or nothing: ``import_records(one_transaction=True)``,
    and the eval, which seeds a case's brand, history and mentions in one transaction."""
    report = report or Report()
    deferred: list[Record] = []
    for chunk, final in _chunks(items, report, deferred, chunk_rows):
        _count(_store_chunk(conn, brand_id, chunk, final), report, deferred, progress)
    return report


def _store_chunk(conn: Connection, brand_id: int, chunk: list[Record], final: bool) -> Outcome:
    known = _existing(conn, brand_id, [r.key for r in chunk])
    fresh: dict[Key, Record] = {}
    duplicates = 0
    for record in chunk:
        if record.key in known or record.key in fresh:
            duplicates += 1
        else:
            fresh[record.key] = record

    people = resolve_people(conn, brand_id, (
        Sighting(r.platform, r.handle, r.at, r.handle_external_id, r.display_name, r.followers)
        for r in fresh.values() if r.handle is not None))

    parent_keys = [(r.platform, r.in_reply_to) for r in fresh.values()
                   if r.in_reply_to and (r.handle is None or r.conversation is None)]
    stored_parents = _existing(conn, brand_id, [k for k in parent_keys if k not in fresh])  # type: ignore[misc]

    person_of: dict[Key, int | None] = {}
    conversation_of: dict[Key, str | None] = {}

    def place(start: Record) -> None:
        """Person and conversation of ``start``, walking up through parents in this chunk (no recursion)."""
        path: list[Record] = []
        current: Record | None = start
        while current is not None and current.key not in person_of:
            path.append(current)
            if current.handle is not None and current.conversation is not None:
                break
            up = (current.platform, current.in_reply_to) if current.in_reply_to else None
            current = fresh.get(up) if up and up not in stored_parents else None  # type: ignore[arg-type]
            if current is not None and current in path:
                break
        for record in reversed(path):
            up = (record.platform, record.in_reply_to) if record.in_reply_to else None
            parent_person: int | None = None
            parent_conversation: str | None = None
            if up in stored_parents:
                parent_person, parent_conversation = stored_parents[up][0], stored_parents[up][1]  # type: ignore[index]
            elif up in fresh:
                parent_person, parent_conversation = person_of.get(up), conversation_of.get(up)  # type: ignore[arg-type]
            person_of[record.key] = people[(record.platform, record.handle)] if record.handle else parent_person
            conversation_of[record.key] = record.conversation or parent_conversation

    for record in fresh.values():
        place(record)

    now = utcnow()
    rows: list[dict[str, Any]] = []
    activity: dict = {}
    invalid: list[Invalid] = []
    waiting: list[Record] = []
    for key, record in fresh.items():
        person_id = person_of.get(key)
        if person_id is None:
            if final:
                invalid.append(Invalid(record.line, [{
                    "field": "in_reply_to", "message": "answers a message found neither in the file nor in the "
                    "history; give a recipient"}]))
            else:
                waiting.append(record)
            continue
        rows.append({"brand_id": brand_id, "person_id": person_id, "direction": record.direction,
                     "platform": record.platform, "external_id": record.external_id, "text": record.text,
                     "occurred_at": record.at, "received_at": now, "in_reply_to": record.in_reply_to,
                     "conversation_key": conversation_of.get(key), "url": record.url, "lang": record.lang,
                     "followers": record.followers, "turn_id": None, "raw": record.raw})
        tally(activity, person_id, record.at, record.inbound,
              record.display_name if record.inbound else None, record.followers if record.inbound else None)
    if rows:
        executemany(conn, Interaction.__table__, rows)
        apply_activity(conn, activity)
    return len(rows), duplicates, invalid, waiting


_EXISTING = (select(Interaction.platform, Interaction.external_id, Interaction.person_id, Interaction.conversation_key)
             .where(Interaction.brand_id == bindparam("brand_id"),
                    platform_keys(Interaction.platform, Interaction.external_id)))


def _existing(conn: Connection, brand_id: int, keys: list[Key]) -> dict[Key, tuple[int, str | None]]:
    """The stored messages among ``keys``: their person and conversation."""
    return {(platform, external_id): (person_id, conversation) for platform, external_id, person_id, conversation
            in rows_by_platform_keys(conn, _EXISTING, keys, chunk=LOOKUP, brand_id=brand_id)}


# ---------------------------------------------------------------------------------------------- entry points

async def import_ndjson_stream(db: Database, brand_id: int, chunks: AsyncIterable[bytes]) -> ImportResult:
    """The HTTP endpoint: each line is parsed as the body arrives, so a body of bad lines costs no more memory
    than its first ``KEPT_INVALID`` errors; the valid records are then stored in one transaction."""
    report = Report()
    records: list[Record] = []
    now = utcnow()
    decoder = msgspec.json.Decoder(HistoryLineIn)
    number = 0
    async for raw_line in stream_lines(chunks):
        number += 1
        item = parse_ndjson_line(decoder, number, raw_line, now)
        if isinstance(item, Invalid):
            report.rows += 1
            report.add_invalid([item])
        elif item is not None:
            records.append(item)
    await import_records(db, brand_id, records, one_transaction=True, report=report)
    return report.result()


async def import_ndjson_body(db: Database, brand_id: int, body: bytes) -> ImportResult:
    """A body already in memory (the demo's history), imported as the endpoint imports it."""
    async def whole() -> AsyncIterator[bytes]:
        yield body

    return await import_ndjson_stream(db, brand_id, whole())


async def import_file(db: Database, brand_id: int, path: Path, *, fmt: str = "auto", chunk_rows: int = CHUNK_ROWS,
                      progress: Progress | None = None) -> Report:
    """The command line: NDJSON or the tweet CSV, a chunk per transaction."""
    fmt = sniff_format(path) if fmt == "auto" else fmt
    items = parse_tweet_csv(path) if fmt == "csv" else read_ndjson(path)
    return await import_records(db, brand_id, items, chunk_rows=chunk_rows, progress=progress)


class RateMeter:
    """Rows done and rows per second, for progress lines."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def line(self, report: Report) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return (f"{report.rows:,} rows ({report.imported:,} imported, {report.duplicates:,} duplicates, "
                f"{report.invalid_count:,} invalid) in {elapsed:.1f} s, {report.rows / elapsed:,.0f} rows/s")


__all__ = ["ImportResult", "Invalid", "LineError", "Record", "Report", "import_file", "import_ndjson_body",
           "import_ndjson_stream", "import_records", "parse_ndjson", "parse_tweet_csv", "sniff_format",
           "store_records"]
