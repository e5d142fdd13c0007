"""Privacy requests: a person asks to see, or to erase, what the brand holds about them. Export and erasure,
each in one transaction.

Erasure closes the person's open turns (nothing more is drafted, approved or posted for them), deletes or
irreversibly redacts every row that is theirs (``assistant/db/erasure.py`` says which and how), records that
it happened without any content, and tells subscribers ``person.erased`` (ids and time only). The person's id
answers 404 afterwards; a handle of theirs that writes again is a new person.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from assistant.audit.service import record
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db import erasure
from assistant.db.base import utcnow
from assistant.db.people import Person
from assistant.db.turns import Turn
from assistant.errors import NotFound
from assistant import turns
from assistant.people.schemas import Erasure, PersonExport
from assistant.webhooks.events import emit


async def export_person(db: Database, actor: Principal, person_id: int) -> PersonExport:
    return await db.run_read(_export, actor, person_id)


async def erase_person(db: Database, actor: Principal, person_id: int) -> Erasure:
    return await db.run_write(_erase, actor, person_id)


def brand_of(conn: Connection, person_id: int) -> int:
    """The brand a person belongs to: the operator's command line names people by id alone."""
    brand_id = conn.execute(select(Person.brand_id).where(Person.id == person_id)).scalar()
    if brand_id is None:
        raise NotFound(f"There is no person {person_id}")
    return int(brand_id)


def _holdings(conn: Connection, actor: Principal, person_id: int) -> erasure.Holdings:
    brand_id = actor.brand_id or brand_of(conn, person_id)
    held = erasure.holdings(conn, brand_id, person_id)
    if held is None:
        raise NotFound(f"There is no person {person_id}")
    return held


def _export(conn: Connection, actor: Principal, person_id: int) -> PersonExport:
    held = _holdings(conn, actor, person_id)
    return PersonExport(person_id=person_id, exported_at=utcnow(), tables=erasure.export_rows(conn, held))


def _erase(conn: Connection, actor: Principal, person_id: int) -> Erasure:
    held = _holdings(conn, actor, person_id)
    brand_id = actor.brand_id or brand_of(conn, person_id)
    at = utcnow()
    _close_open_turns(conn, held)
    rows = erasure.erase_rows(conn, held, at=at)
    record(conn, actor, "person.erased", "person", person_id, brand_id=brand_id, rows=rows)
    emit(conn, brand_id, "person.erased", [{"person_id": person_id, "erased_at": at.isoformat()}])
    return Erasure(person_id=person_id, status="erased", erased_at=at, rows=rows)


def _close_open_turns(conn: Connection, held: erasure.Holdings) -> None:
    """Nothing more is drafted or approved for them (``erasure.erase_rows`` withdraws the unsent replies)."""
    still_open = conn.execute(select(Turn.id).where(Turn.id.in_(held.turn_ids),
                                                    Turn.status.in_(turns.TRANSITIONS["erase"][0]))).scalars()
    turns.erase(conn, list(still_open))
