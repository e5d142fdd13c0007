"""Learning from edits: what a reviewer changed in a draft before approving it, word by word.

Each approval stores the phrases removed and added and the edit's size (words removed plus added); the admin
page counts the brand's most frequent ones over a period, and the evaluation report reads the edit rate.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import regex
from sqlalchemy import Connection, func, select

from assistant.audit import record
from assistant.auth.principal import Principal
from assistant.db.memory import ReplyEdit
from assistant.db.turns import Decision, Turn
from assistant.errors import Forbidden, NotFound, ValidationFailed
from assistant.validation import clean_text
from assistant.policy import PolicyFileError
from assistant.policy.service import policy_source, set_brand_policy

_WORD = regex.compile(r"\S+")
PHRASE_WORDS_MAX = 8
PHRASE_MAX_CHARS = 200


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
            removed.append(" ".join(before[a1:min(a2, a1 + PHRASE_WORDS_MAX)]))
            size += a2 - a1
        if b2 > b1:
            added.append(" ".join(after[b1:min(b2, b1 + PHRASE_WORDS_MAX)]))
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
    decision_id: int
    """The newest approval with this edit: its final text is what an example is made of."""


def frequent_edits(conn: Connection, brand_id: int, *, since: dt.datetime, until: dt.datetime,
                   limit: int = 20) -> tuple[list[FrequentEdit], int]:
    """The brand's most frequent edits in [since, until): phrases removed, phrases added (a sign-off fix shows
    as the sign-off added or removed), and length fixes (a reply cut or grown by a third or more). Answers them with the number of
    edited approvals read."""
    rows = conn.execute(select(ReplyEdit.removed, ReplyEdit.added, ReplyEdit.draft_words, ReplyEdit.decision_id)
                        .where(ReplyEdit.brand_id == brand_id, ReplyEdit.size > 0, ReplyEdit.draft_source != "human",
                               ReplyEdit.created_at >= since, ReplyEdit.created_at < until)
                        .order_by(ReplyEdit.created_at, ReplyEdit.id)).all()
    counts: Counter[tuple[str, str]] = Counter()
    newest: dict[tuple[str, str], int] = {}
    for removed, added, draft_words, decision_id in rows:
        keys = {("removed", p.lower()) for p in removed or []} | {("added", p.lower()) for p in added or []}
        removed_words = sum(len(p.split()) for p in removed or [])
        added_words = sum(len(p.split()) for p in added or [])
        if draft_words and abs(added_words - removed_words) * 3 >= draft_words:
            keys.add(("length", "shorter" if removed_words > added_words else "longer"))
        for key in keys:
            counts[key] += 1
            newest[key] = decision_id
    edits = [FrequentEdit(change, phrase, n, newest[change, phrase])
             for (change, phrase), n in counts.most_common(limit)]
    return edits, len(rows)


def learn_rule(conn: Connection, actor: Principal, phrase: str) -> str:
    """A phrase reviewers keep removing becomes a warning rule of the brand's policy (``[[phrase_rules]]``,
    appended to the policy file, which is validated and stored as a new version). Answers the new hash."""
    phrase = " ".join(clean_text(phrase, "phrase").split())
    if len(phrase) > PHRASE_MAX_CHARS:
        raise ValidationFailed.field("phrase", f"must be at most {PHRASE_MAX_CHARS} characters")
    addition = f'\n[[phrase_rules]]    # from the edits page\nphrase = {_toml_string(phrase)}\nseverity = "warn"\n'
    return _append_to_policy(conn, actor, addition, "edits.rule_learned", phrase=phrase)


def learn_example(conn: Connection, actor: Principal, decision_id: int) -> str:
    """An approved reply (as the reviewer finished it) becomes a passing example of the brand's policy
    (``[[examples]]``, run by ``assistant policy check``). Answers the new hash."""
    found = conn.execute(select(Decision.final_text, Turn.platform).join(Turn, Turn.id == Decision.turn_id)
                         .where(Decision.id == decision_id, Turn.brand_id == actor.brand_id,
                                Decision.action == "approve")).first()
    if found is None or not found.final_text:
        raise NotFound(f"no approval {decision_id}")
    addition = (f'\n[[examples]]    # from the edits page: an approved reply as the reviewer finished it\n'
                f'platform = {_toml_string(found.platform)}\ntext = {_toml_string(found.final_text)}\n'
                f'expect = "pass"\n')
    return _append_to_policy(conn, actor, addition, "edits.example_learned", decision_id=decision_id)


def _append_to_policy(conn: Connection, actor: Principal, addition: str, action: str, **data: Any) -> str:
    if not actor.is_admin:
        raise Forbidden("Only an admin may change the policy")
    source = policy_source(conn, actor.brand_id).rstrip("\n") + "\n" + addition
    try:
        policy_hash = set_brand_policy(conn, actor.brand_id, source, "policy.toml", actor)
    except PolicyFileError as error:
        raise ValidationFailed(f"the policy would not load: {error.messages[0]}") from None
    record(conn, actor, action, "brand", actor.brand_id, brand_id=actor.brand_id, policy_hash=policy_hash, **data)
    return policy_hash


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's (quotes, backslashes, control characters as \\uXXXX)."""
    return json.dumps(text, ensure_ascii=False)


__all__ = ["EditRates", "FrequentEdit", "WordDiff", "edit_rates", "frequent_edits", "learn_example", "learn_rule",
           "record_edit", "word_diff"]
