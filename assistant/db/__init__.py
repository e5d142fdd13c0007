"""Database access, and THE rule for touching the database.

**Every rule that touches the database is a plain synchronous function whose first argument is a SQLAlchemy
``Connection``** (Core statements on tables; no ORM session; it never commits). The service edge (the async
function a controller, the worker or a CLI command calls) runs it once per transaction::

    async def reject(db: Database, actor: Principal, turn_id: int, reason: str) -> Decided:
        return await db.run_write(_reject, actor, turn_id, reason)    # or db.run_read(...) to read

    def _reject(conn: Connection, actor: Principal, turn_id: int, reason: str) -> Decided:
        turn = turns.load(conn, actor.brand_id, turn_id)              # every call below shares the
        decision_id = turns.reject(conn, turn, actor.id, reason)      # transaction: all of it lands,
        record(conn, actor, "turn.rejected", "turn", turn.id, ...)    # or none of it
        ...

The same code runs on SQLite and PostgreSQL; ``Database.run_write``/``run_read`` (``engine.py``) own the
transaction, its dialect's way to run it (SQLite: in the event loop on a ``sqlite3`` connection under an
asyncio lock and ``BEGIN IMMEDIATE``; PostgreSQL: a pooled asyncpg connection) and turning a busy database
into 503. One function, one name: no ``_sync``/``_on`` twins. Whatever differs by dialect lives here and
nowhere else: row locks (``locking``), bulk inserts (``bulk``), group commit (``group_commit``).

Each package owns its tables (the models live here, one module per table family) and writes them only
through its own functions; the turn's status changes only through ``assistant.turns``.
"""

from assistant.db.engine import Database, normalize_url

__all__ = ["Database", "normalize_url"]
