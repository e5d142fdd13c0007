"""From a file of past conversations to eval cases: one per reply the brand's human wrote.

The file is read by the history importer's own parsers (NDJSON, or the support-tweet CSV layout), so
``assistant eval`` accepts exactly what ``assistant import`` accepts. For each brand reply, the case holds
the person's messages that it answered (their inbound messages since our previous reply to them, in the
reply's conversation), everything of that person's before those (history, both directions), and the reply
the human actually wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ValidationFailed
from assistant.people.importer import Invalid, Record, parse_tweet_csv, read_ndjson, sniff_format

DEFAULT_BRAND_NAME = "the brand"


@dataclass(frozen=True)
class Case:
    """One reply to draft again. ``id`` names it across runs (resume, compare): the human reply's key, or
    ``hostile:NAME`` for a probe of the built-in hostile set."""

    id: str
    platform: str
    handle: str
    display_name: str | None
    brand_name: str
    history: tuple[Record, ...]
    """The person's messages before the ones answered, oldest first; outbound ones carry the person's handle."""
    mentions: tuple[Record, ...]
    """What the reply answered, oldest first (at least one)."""
    human_reply: str | None
    replied_at: dt.datetime
    """When the human replied: the replay happens "as of" then (see ``runner.seed``)."""
    hostile: str | None = None

    @property
    def own_texts(self) -> list[str]:
        """Everything of this person's that the drafting prompt may show (for the leak check)."""
        return [r.text for r in (*self.history, *self.mentions)] + [self.handle, self.display_name or ""]


@dataclass(frozen=True)
class Dataset:
    path: Path
    fingerprint: str
    """sha256 of the file: a resumed run must be of the same data."""
    cases: list[Case]
    invalid: int
    """Rows the importer's parsers refused."""
    texts_by_person: dict[tuple[str, str], list[str]]
    """Every message of each person (theirs and our replies to them), for the leak check."""


def load(path: Path) -> Dataset:
    """Read ``path`` (NDJSON or tweet CSV) into cases, in the file order of the human replies."""
    fmt = sniff_format(path)
    items = parse_tweet_csv(path) if fmt == "csv" else read_ndjson(path)
    records: list[Record] = []
    invalid = 0
    for item in items:
        if isinstance(item, Invalid):
            invalid += 1
        else:
            records.append(item)
    if not records:
        raise ValidationFailed.field("file", "holds no valid message to replay")
    cases, texts = build_cases(records)
    return Dataset(path=path, fingerprint=_sha256(path), cases=cases, invalid=invalid, texts_by_person=texts)


def build_cases(records: list[Record]) -> tuple[list[Case], dict[tuple[str, str], list[str]]]:
    """Cases from valid records (any order), and each person's texts."""
    by_key = {r.key: r for r in records}
    owner: dict[tuple[str, str], str | None] = {}

    def person(record: Record) -> str | None:
        """The person of a message: its author (inbound), its recipient, else the person of what it answers."""
        chain: list[tuple[str, str]] = []
        current: Record | None = record
        found: str | None = None
        while current is not None and current.key not in chain:
            if current.key in owner:
                found = owner[current.key]
                break
            chain.append(current.key)
            if current.handle is not None:
                found = current.handle
                break
            current = by_key.get((current.platform, current.in_reply_to)) if current.in_reply_to else None
        for key in chain:
            owner[key] = found
        return found

    threads: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        handle = person(record)
        if handle is not None:
            threads[(record.platform, handle)].append(
                record if record.handle == handle else dataclasses.replace(record, handle=handle))

    brand_names = _brand_names(records)
    cases: list[tuple[int, Case]] = []
    for (platform, handle), messages in threads.items():
        messages.sort(key=lambda r: (r.at, r.line))
        waiting: list[int] = []  # indexes of their messages since our last reply to them
        for index, message in enumerate(messages):
            if message.inbound:
                waiting.append(index)
                continue
            answered = [i for i in waiting if _same_conversation(messages[i], message)]
            waiting = []
            if not answered:
                continue  # a second part of a reply, or a reply to nothing in the file
            first = answered[0]
            mentions = tuple(messages[i] for i in answered)
            name = next((m.display_name for m in reversed(mentions) if m.display_name), None)
            cases.append((message.line, Case(
                id=f"{platform}:{message.external_id}", platform=platform, handle=handle, display_name=name,
                brand_name=brand_names.get(message.key, DEFAULT_BRAND_NAME),
                history=tuple(messages[:first]), mentions=mentions, human_reply=message.text,
                replied_at=message.at)))
    cases.sort(key=lambda pair: pair[0])
    texts = {person_key: [m.text for m in messages] for person_key, messages in threads.items()}
    return [case for _, case in cases], texts


def _same_conversation(mention: Record, reply: Record) -> bool:
    return mention.conversation is None or reply.conversation is None or mention.conversation == reply.conversation


def _brand_names(records: list[Record]) -> dict[tuple[str, str], str]:
    """The brand account that wrote each reply, where the file says (the tweet CSV's ``author_id``)."""
    return {r.key: str(r.raw["author_id"]).strip() for r in records
            if not r.inbound and r.raw and str(r.raw.get("author_id") or "").strip()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["Case", "Dataset", "build_cases", "load"]
