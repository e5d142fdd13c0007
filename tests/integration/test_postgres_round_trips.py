"""PostgreSQL: an ingest group commit waits on as few round trips as it can, since the one server process's serial
round trips are what limits single-mention ingest there. Round trips are counted by a TCP relay between the
``Database`` and the real server (each time the client speaks again after the server answered), statements by
SQLAlchemy's ``before_cursor_execute``. Also: the ids the one-statement inserts answer are those of the rows
stored (what they store: ``test_ingest_storage.py``), and a handle another writer claimed first
(found out from what the handles' insert returns) resolves to that writer's person."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, make_url, select

from assistant.db import Database
from assistant.db.bulk import UNNEST_MAX_ROWS
from assistant.db.jobs import Job
from assistant.db.people import Handle, Interaction, Person
from assistant.db.turns import Turn
from assistant.mentions.service import Mention, ingest, validate
from assistant.people.identity import Sighting, resolve_people
from tests.support.factories import Factory

pytestmark = pytest.mark.postgres


class Relay:
    """Passes bytes between clients and the server, counting the client's turns to speak."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.round_trips = 0
        self._last = ""

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, side: str) -> None:
        try:
            while data := await reader.read(65536):
                if side == "client" and self._last != "client":
                    self.round_trips += 1
                self._last = side
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(reader, server_writer, "client"), self._pipe(server_reader, writer, "server"))


@pytest.fixture
async def relayed(settings: Any) -> AsyncIterator[tuple[Database, Relay]]:
    url = make_url(settings.database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    server = await asyncio.start_server(relay._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    db = Database(url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False), pool_size=1)
    try:
        yield db, relay
    finally:
        await db.dispose()
        server.close()


def mentions(prefix: str, n: int, authors: int) -> list[Mention]:
    return [validate({"platform": "x", "external_id": f"{prefix}{i}", "text": f"my order {i} is late",
                      "created_at": "2026-11-20T12:00:00Z", "author": {"handle": f"@author{i % authors}"}})
            for i in range(n)]


async def test_an_ingest_group_commit_of_known_people_is_nine_round_trips(
        relayed: tuple[Database, Relay], factory: Factory) -> None:
    """Twenty mentions from people with open turns: BEGIN (the pool's liveness check), three lookups (known
    mentions, handles, open turns), the turns' and the people's updates (each locking its rows in the same
    statement), the mentions' insert with their ids, the queued jobs' lookup, COMMIT. On main it was 13: a
    ``SELECT 1`` ping, two ``SELECT ... FOR UPDATE``, and ``nextval`` before a ``COPY``."""
    db, relay = relayed
    kit = await factory.brand()
    statements: list[str] = []
    for engine in db.engines:
        event.listen(engine, "before_cursor_execute",
                     lambda conn, cursor, sql, params, context, many: statements.append(sql))
    for n in range(3):  # people, open turns and their jobs made; asyncpg's prepared statements cached
        await ingest(db, kit.id, mentions(f"warm{n}-", 20, authors=20))
    statements.clear()
    relay.round_trips = 0
    outcomes = await ingest(db, kit.id, mentions("m", 20, authors=20))
    assert len(outcomes) == 20 and not any(o.duplicate for o in outcomes)
    assert relay.round_trips == 9, statements
    assert len(statements) == 7
    assert not any("nextval" in sql or sql.lstrip().startswith("SELECT 1") for sql in statements)


async def test_an_ingest_group_commit_of_new_people_is_eleven_round_trips(
        relayed: tuple[Database, Relay], factory: Factory) -> None:
    """Twenty mentions from twenty new people: BEGIN, the three lookups, the people's insert with their ids, the
    handles' insert answering which it stored, the turns' insert with their ids, the people's update, the
    mentions' insert, the jobs' insert, COMMIT. On main it was 17: ``SELECT 1``, a second handles lookup after
    their insert, three ``nextval`` before three ``COPY``, and a ``SELECT ... FOR UPDATE`` before the update."""
    db, relay = relayed
    kit = await factory.brand()
    for n in range(2):
        await ingest(db, kit.id, mentions(f"warm{n}-", 20, authors=20))
    relay.round_trips = 0
    outcomes = await ingest(db, kit.id, [validate({
        "platform": "x", "external_id": f"new{i}", "text": "hello", "created_at": "2026-11-20T12:00:00Z",
        "author": {"handle": f"@newcomer{i}"}}) for i in range(20)])
    assert len({o.person_id for o in outcomes}) == 20 and relay.round_trips == 11


@pytest.mark.parametrize("n", [1, 20, UNNEST_MAX_ROWS + 1])  # one-statement inserts, then COPY
async def test_ingest_answers_the_ids_of_the_rows_it_stored(db: Database, factory: Factory, n: int) -> None:
    kit = await factory.brand()
    await ingest(db, kit.id, mentions("before", 7, authors=3))  # ids of people, turns and mentions move on
    given = mentions("e", n, authors=max(1, n // 3))
    outcomes = await ingest(db, kit.id, given)

    def stored(conn: Any) -> tuple[dict[int, Any], dict[int, Any], set[int]]:
        rows = {r.id: r for r in conn.execute(select(Interaction.id, Interaction.external_id, Interaction.person_id,
                                                     Interaction.turn_id).where(Interaction.brand_id == kit.id))}
        turns = {r.id: r for r in conn.execute(select(Turn.id, Turn.person_id).where(Turn.brand_id == kit.id))}
        jobs = set(conn.execute(select(Job.subject_id).where(Job.brand_id == kit.id)).scalars())
        return rows, turns, jobs

    rows, turns, jobs = await db.run_read(stored)
    for mention, outcome in zip(given, outcomes):
        row = rows[outcome.id]
        assert (row.external_id, row.person_id, row.turn_id) == (mention.external_id, outcome.person_id,
                                                                  outcome.turn_id)
        assert turns[outcome.turn_id].person_id == outcome.person_id and outcome.turn_id in jobs
    assert len({o.person_id for o in outcomes}) == max(1, n // 3)


async def test_writers_creating_the_same_people_at_once_agree_on_them(db: Database, factory: Factory) -> None:
    """The first writer holds its new handles b and c uncommitted; the second's insert of them waits, then skips
    them (another writer has them), so it looks them up and drops the people it made for them."""
    kit = await factory.brand()
    at = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc)

    def create(conn: Any, handles: list[str], hold: float) -> dict[tuple[str, str], int]:
        found = resolve_people(conn, kit.id, [Sighting("x", h, at) for h in handles])
        conn.exec_driver_sql(f"SELECT pg_sleep({hold})")
        return found

    first = asyncio.create_task(db.run_write(create, ["a", "b", "c"], 0.5))
    await asyncio.sleep(0.2)
    second = await db.run_write(create, ["b", "c", "d"], 0)
    first_found = await first
    assert {k: first_found[k] for k in [("x", "b"), ("x", "c")]} == {k: second[k] for k in [("x", "b"), ("x", "c")]}

    def stored(conn: Any) -> tuple[dict[str, int], set[int]]:
        handles = {h: pid for h, pid in conn.execute(select(Handle.handle, Handle.person_id)
                                                     .where(Handle.brand_id == kit.id))}
        return handles, set(conn.execute(select(Person.id).where(Person.brand_id == kit.id)).scalars())

    handles, people = await db.run_read(stored)
    assert handles == {"a": first_found[("x", "a")], "b": first_found[("x", "b")], "c": first_found[("x", "c")],
                       "d": second[("x", "d")]}
    assert people == set(handles.values())
