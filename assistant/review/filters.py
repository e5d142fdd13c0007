"""Search and filters of the approval queue: who (name, handle), what (words of the mentions or the draft),
where (platform), first contact or not, and which escalation rule.

Filters only narrow the queue; its order stays the fair one (whoever began waiting first, then by id). A
filter arrives as query parameters, as people type them; ``parse`` turns them into a typed ``QueueFilter``
and says, in words for people, what it could not use (that filter is left out, the page still answers).

What each costs at 100,000 pending turns (``bench/bench_queue_page.py``, SQLite):

- platform: the ``(brand_id, status, platform, waiting_since, id)`` index, as cheap as no filter;
- handle (exact, any platform): the ``(brand_id, handle)`` index finds the few people, then their turns by
  ``(person_id, status)``: as cheap as no filter;
- first contact, escalation rule: checked on each turn read in queue order, so a page costs as many turns
  as it takes to find a page of matches (next to nothing when matches are common, the whole view when rare);
- name and words: ``LIKE '%…%'`` (wildcards in the typed text escaped), which no index serves: read in queue
  order like the above, so a rare name or phrase reads the whole view (the name through each turn's person,
  the words through each turn's mentions and its current draft). This is the price of a search without a
  full-text index (medians on the shared 2-core machine at load ~8: one name 75 ms, one phrase 250 ms,
  against 18 ms with no search). The counts of matches read on until they pass their cap (the page's 1,000+), and the
  view's own count is not read at all when its first page already holds every match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from sqlalchemy import Select, exists, or_, select

from assistant.db.dialect import contains_any_case
from assistant.db.people import Handle, Interaction, Person
from assistant.db.turns import Draft, Turn
from assistant.errors import ValidationFailed
from assistant.validation import CONTROLS_OR_NEWLINES, handle_key, platform_token

MAX_SEARCH = 200
"""The longest name, handle, words or rule name a filter takes (a handle and a rule name are stored at 200)."""
YES, NO = ("yes", "true", "1", "on"), ("no", "false", "0", "off")


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to; None everywhere is the whole queue."""

    person: str | None = None
    """A part of the person's display name, any case (on SQLite any case of A to Z only: its ``lower``
    folds no other letters)."""
    handle: str | None = None
    """The person's whole handle on any platform, lower-case, without the @."""
    text: str | None = None
    """Words in one of the turn's mentions or in its current draft, any case (as ``person``)."""
    platform: str | None = None
    first_contact: bool | None = None
    """True: nobody here has replied to them yet; False: a regular."""
    rule: str | None = None
    """The ``[[escalate]]`` rule that escalated the turn."""

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def params(self) -> dict[str, str]:
        """The filter as query parameters, to carry into links (the next page, a person, a decision)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = ("yes" if value else "no") if isinstance(value, bool) else value
        return out


FIELD_NAMES = {"person": "name", "handle": "handle", "text": "words", "platform": "platform",
               "first_contact": "first contact", "rule": "escalation rule"}


def parse(params: Mapping[str, str]) -> tuple[QueueFilter, list[str]]:
    """The filter in the query parameters, and a sentence for each value that could not be used (that
    filter is left out). Empty values mean "any"."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for name in FIELD_NAMES:
        raw = (params.get(name) or "").strip()
        if not raw:
            continue
        try:
            values[name] = _PARSERS[name](raw)
        except ValueError as exc:
            problems.append(f"{str(exc)} The {FIELD_NAMES[name]} filter was left out.")
    return QueueFilter(**values), problems  # type: ignore[arg-type]


def _words(raw: str) -> str:
    if len(raw) > MAX_SEARCH:
        raise ValueError(f"Search for at most {MAX_SEARCH} characters.")
    if CONTROLS_OR_NEWLINES.search(raw):
        raise ValueError("Search text cannot contain control characters.")
    return raw


def _handle(raw: str) -> str:
    try:
        return handle_key(raw, "handle")
    except ValidationFailed:
        raise ValueError("A handle is one word, such as @ana_lopez, without spaces, quotes or < >.") from None


def _platform(raw: str) -> str:
    try:
        return platform_token(raw)
    except ValidationFailed:
        raise ValueError("A platform is a short lower-case name such as x, bluesky or mastodon.") from None


def _yes_no(raw: str) -> bool:
    if raw.lower() in YES:
        return True
    if raw.lower() in NO:
        return False
    raise ValueError("First contact is yes or no.")


_PARSERS = {"person": _words, "handle": _handle, "text": _words, "platform": _platform,
            "first_contact": _yes_no, "rule": _words}


def people_with_handle(brand_id: int, handle: str) -> Select[tuple[int]]:
    """The brand's people who use ``handle`` on some platform (by the ``(brand_id, handle)`` index)."""
    return select(Handle.person_id).where(Handle.brand_id == brand_id, Handle.handle == handle)


def narrowed(query: Select, brand_id: int, status: str, f: QueueFilter, person_ids: list[int] | None) -> Select:
    """``query`` (over ``turns``) limited to the brand's turns in ``status`` that match ``f``.

    ``person_ids`` are the people ``f.handle`` names, found beforehand: the turns are then read by
    ``(person_id, status)`` (the brand is theirs; a check on ``brand_id`` would steer SQLite to the queue
    index and a read of the whole view)."""
    if person_ids is not None:
        query = query.where(Turn.person_id.in_(person_ids), Turn.status == status)
    else:
        query = query.where(Turn.brand_id == brand_id, Turn.status == status)
    if f.platform is not None:
        query = query.where(Turn.platform == f.platform)
    if f.rule is not None:
        query = query.where(Turn.escalation_rule == f.rule)
    if f.person is not None or f.first_contact is not None:
        query = query.join_from(Turn, Person, Person.id == Turn.person_id)
        if f.person is not None:
            query = query.where(contains_any_case(Person.display_name, f.person))
        if f.first_contact is not None:
            query = query.where(Person.reply_count == 0 if f.first_contact else Person.reply_count > 0)
    if f.text is not None:
        said = exists().where(Interaction.turn_id == Turn.id, Interaction.direction == "inbound",
                              contains_any_case(Interaction.text, f.text))
        query = (query.outerjoin_from(Turn, Draft, Draft.id == Turn.current_draft_id)
                 .where(or_(contains_any_case(Draft.text, f.text), said)))
    return query


__all__ = ["FIELD_NAMES", "QueueFilter", "narrowed", "parse", "people_with_handle"]
