"""What the live queue watches: a mark that moves whenever any turn of the brand changes.

Every turn change goes through ``assistant.turns``, which sets ``updated_at``; so the latest ``updated_at`` of the
brand's turns moves when a turn arrives, is drafted again, is decided or is taken by anyone, in any process.
One read of the ``(brand_id, updated_at)`` index, so each open page can ask every second.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from assistant.db.turns import Turn


def queue_mark(conn: Connection, brand_id: int) -> str:
    """The brand's latest turn change, as text ("" for a brand without turns); only this brand is read."""
    latest = conn.execute(select(func.max(Turn.updated_at)).where(Turn.brand_id == brand_id)).scalar()
    return latest.isoformat() if latest is not None else ""


__all__ = ["queue_mark"]
