"""Learning from edits: what a reviewer changed in a draft before approving it, word by word.

Each approval stores the phrases removed and added and the edit's size (words removed plus added); the admin
page counts the brand's most frequent ones over a period, and the evaluation report reads the edit rate.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections import Counter
from dataclasses import dataclass

import regex
from sqlalchemy import Connection, func, select

from assistant.db.memory import ReplyEdit

_WORD = regex.compile(r"\S+")
PHRASE_WORDS_MAX = 8


@dataclass(frozen=True)
class WordDiff:
    removed: list[str]
    added: list[str]
    size: int
    draft_words: int


def word_diff(draft: str, final: str) -> WordDiff:
    """The runs of words taken out of ``draft`` and put into ``final`` (a replaced run is both), and the count
    of words changed. Runs longer than a phrase are kept whole up to ``PHRASE_WORDS_MAX`` words."""
    before, after = _WORD.findall(draft), _WORD.findall(final)
    removed: list[str] = []
    added: list[str] = []
    size = 0
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        if a2 > a1:
            removed.append(" ".join(before[a1:a1 + PHRASE_WORDS_MAX]))
            size += a2 - a1
        if b2 > b1:
            added.append(" ".join(after[b1:b1 + PHRASE_WORDS_MAX]))
            size += b2 - b1
    return WordDiff(removed, added, size, len(before))


def record_edit(conn: Connection, *, brand_id: int, person_id: int, turn_id: int, decision_id: int,
                draft_source: str, draft: str, final: str, at: dt.datetime) -> WordDiff:
    """Store the approval's word-level diff (size 0 when the draft went out as it was)."""
    diff = word_diff(draft, final)
    conn.execute(ReplyEdit.__table__.insert().values(
        brand_id=brand_id, person_id=person_id, turn_id=turn_id, decision_id=decision_id, draft_source=draft_source,
        removed=diff.removed, added=diff.added, size=diff.size, draft_words=diff.draft_words, created_at=at))
    return diff


@dataclass(frozen=True)
class EditRates:
    """For the evaluation report: of the approvals in a period, how many went out unchanged, how many were
    edited, and the mean size of an edit (words changed)."""

    approvals: int
    unchanged: int
    edited: int
    mean_edit_words: float | None

    @property
    def edit_rate(self) -> float | None:
        return self.edited / self.approvals if self.approvals else None

    @property
    def unchanged_rate(self) -> float | None:
        return self.unchanged / self.approvals if self.approvals else None


def edit_rates(conn: Connection, brand_id: int, *, since: dt.datetime, until: dt.datetime) -> EditRates:
    """Approvals of drafts written for the reviewer (not from scratch) in [since, until)."""
    edited = ReplyEdit.size > 0
    row = conn.execute(select(func.count(), func.count().filter(edited), func.avg(ReplyEdit.size).filter(edited))
                       .where(ReplyEdit.brand_id == brand_id, ReplyEdit.draft_source != "human",
                              ReplyEdit.created_at >= since, ReplyEdit.created_at < until)).one()
    approvals, changed, mean = int(row[0] or 0), int(row[1] or 0), row[2]
    return EditRates(approvals, approvals - changed, changed, float(mean) if mean is not None else None)


@dataclass(frozen=True)
class FrequentEdit:
    change: str
    """``removed``, ``added`` or ``length``."""
    phrase: str
    count: int


def frequent_edits(conn: Connection, brand_id: int, *, since: dt.datetime, until: dt.datetime,
                   limit: int = 20) -> tuple[list[FrequentEdit], int]:
    """The brand's most frequent edits in [since, until): phrases removed, phrases added (a sign-off fix shows
    as the sign-off added or removed), and length fixes (a reply cut or grown by a third or more). Answers them with the number of
    edited approvals read."""
    rows = conn.execute(select(ReplyEdit.removed, ReplyEdit.added, ReplyEdit.size, ReplyEdit.draft_words)
                        .where(ReplyEdit.brand_id == brand_id, ReplyEdit.size > 0, ReplyEdit.draft_source != "human",
                               ReplyEdit.created_at >= since, ReplyEdit.created_at < until)).all()
    counts: Counter[tuple[str, str]] = Counter()
    for removed, added, size, draft_words in rows:
        for phrase in set(p.lower() for p in removed or []):
            counts["removed", phrase] += 1
        for phrase in set(p.lower() for p in added or []):
            counts["added", phrase] += 1
        removed_words = sum(len(p.split()) for p in removed or [])
        added_words = sum(len(p.split()) for p in added or [])
        if draft_words and abs(added_words - removed_words) * 3 >= draft_words:
            counts["length", "shorter" if removed_words > added_words else "longer"] += 1
    edits = [FrequentEdit(change, phrase, n) for (change, phrase), n in counts.most_common(limit)]
    return edits, len(rows)


__all__ = ["EditRates", "FrequentEdit", "WordDiff", "edit_rates", "frequent_edits", "record_edit", "word_diff"]
