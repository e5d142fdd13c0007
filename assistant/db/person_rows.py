"""The rows of one person that move to another when the two are found to be one (a merge), and back again (its
undo). Like erasure, a question about the schema as a whole: the person's handles, messages and notes are
people's, their turns and replies belong to ``turns`` and the outbox, and ``people`` should write none of the
latter; so the move is done here, beside the models, for every table at once."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction, Note
from assistant.db.turns import Turn

MOVED = (Handle, Interaction, Note, Turn, Reply)
"""The tables whose rows follow a person folded into another. Promises, summaries and suggestions stay with the
person they were made about; the fold points that person at the one they joined."""


def move_person_rows(conn: Connection, from_person: int, to_person: int) -> dict[str, list[int]]:
    """Every row of ``from_person`` in ``MOVED`` now carries ``to_person``: the ids that moved, by table."""
    moved: dict[str, list[int]] = {}
    for model in MOVED:
        ids = list(conn.execute(select(model.id).where(model.person_id == from_person)).scalars())
        if ids:
            conn.execute(update(model).where(model.id.in_(ids)).values(person_id=to_person))
        moved[model.__tablename__] = ids
    return moved


def move_person_rows_back(conn: Connection, moved: dict[str, list[int]], from_person: int, to_person: int) -> None:
    """Undo ``move_person_rows``: the rows that moved and still carry ``from_person`` go back to ``to_person``."""
    for model in MOVED:
        ids = moved.get(model.__tablename__) or []
        if ids:
            conn.execute(update(model).where(model.id.in_(ids), model.person_id == from_person)
                         .values(person_id=to_person))
