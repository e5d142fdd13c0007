"""PostgreSQL: a pooled connection whose server side is gone (a restart, a terminated backend) is found out when
it is taken from the pool (one ``SELECT 1``) and replaced, so the transaction runs on a live connection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from assistant.db import Database
from tests.conftest import TEST_DATABASE_URL

BACKEND = text("SELECT pg_backend_pid()")


@pytest.mark.postgres
async def test_a_dead_pooled_connection_is_replaced_before_the_transaction(db: Database) -> None:
    first = await db.run_read(lambda conn: conn.execute(BACKEND).scalar_one())
    assert await db.run_read(lambda conn: conn.execute(BACKEND).scalar_one()) == first  # the pool keeps it
    killer = await asyncpg.connect(TEST_DATABASE_URL.replace("+asyncpg", ""))
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await killer.close()
    await asyncio.sleep(0.2)
    again = await db.run_read(lambda conn: conn.execute(BACKEND).scalar_one())
    assert again != first
