"""Tests look at and change the database the one way the code does: a statement run in one transaction through
``Database.run_read``/``run_write`` (see ``assistant.db``). Rows come back as ``Row``s: ``row.status`` as before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Executable, Row

from assistant.db import Database


async def scalar(db: Database, statement: Executable) -> Any:
    """The first column of the first row; None when there is no row."""
    return await db.run_read(lambda conn: conn.scalar(statement))


async def scalars(db: Database, statement: Executable) -> list[Any]:
    """The first column of every row."""
    return await db.run_read(lambda conn: list(conn.scalars(statement)))


async def one(db: Database, statement: Executable) -> Row[Any]:
    """The one row: fails when there is none or more than one."""
    return await db.run_read(lambda conn: conn.execute(statement).one())


async def first_row(db: Database, statement: Executable) -> Row[Any] | None:
    """The first row, or None."""
    return await db.run_read(lambda conn: conn.execute(statement).first())


async def rows(db: Database, statement: Executable) -> list[Row[Any]]:
    return await db.run_read(lambda conn: list(conn.execute(statement)))


async def execute(db: Database, *statements: Executable) -> None:
    """Every statement, in order, in one write transaction."""
    def run(conn: Connection) -> None:
        for statement in statements:
            conn.execute(statement)
    await db.run_write(run)
