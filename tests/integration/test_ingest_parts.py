"""A large batch on PostgreSQL is stored in parts side by side (``mentions.service``): the parts touch no row in
common, every mention is stored once with the turn and conversation it would get in one transaction, and a
batch that failed part-way stores the rest, and nothing twice, when it is sent again. SQLite keeps one
transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from assistant.db import Database
from assistant.db.people import Handle, Interaction
from assistant.db.turns import OPEN_TURN_STATES, Turn
from assistant.mentions import service

from tests.support.factories import mention

BATCH = 600


def _batch(prefix: str) -> list[service.Mention]:
    """Mostly one mention per author, with everything that must stay in one part: a two-handle person's mentions
    spread through the batch, a reply to a mention of the same batch by another author, and two copies of one
    mention (the second from another handle, as a hostile client might send)."""
    items = [mention(f"{prefix}{n}", handle=f"@u{n}") for n in range(BATCH)]
    for n in (10, 200, 400):
        items[n] = mention(f"{prefix}{n}", handle="@ana")
    for n in (11, 201, 401):
        items[n] = mention(f"{prefix}{n}", handle="@ana-too")
    items[50] = mention(f"{prefix}parent", handle="@u50", conversation_id="conv-1")
    items[550] = mention(f"{prefix}reply", handle="@u550", in_reply_to=f"{prefix}parent")
    items[300] = mention(f"{prefix}copy", handle="@u300")
    items[500] = mention(f"{prefix}copy", handle="@u500")
    return [service.validate(item) for item in items]


async def _two_handle_person(db: Database, brand_id: int) -> int:
    """@ana, with @ana-too joined to her (as a reviewer's merge leaves it), and no open turn."""
    [first] = await service.ingest(db, brand_id, [service.validate(mention("seed", handle="@ana"))])

    def join_handle(conn: Connection) -> None:
        conn.execute(insert(Handle).values(brand_id=brand_id, person_id=first.person_id, platform="x",
                                           handle="ana-too", created_at=dt.datetime.now(dt.timezone.utc)))
        conn.execute(Turn.__table__.update().where(Turn.id == first.turn_id).values(status="done"))

    await db.run_write(join_handle)
    return first.person_id


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Records each transaction's number of mentions and how many ran at once."""
    seen: dict[str, Any] = {"sizes": [], "running": 0, "most": 0}
    store = service.store_mentions

    def recording(conn: Connection, brand_id: int, mentions: Any) -> Any:
        seen["sizes"].append(len(mentions))
        seen["running"] += 1
        seen["most"] = max(seen["most"], seen["running"])
        try:
            return store(conn, brand_id, mentions)
        finally:
            seen["running"] -= 1

    monkeypatch.setattr(service, "store_mentions", recording)
    return seen


async def test_a_large_batch_is_stored_as_one_transaction_would_store_it(db: Database, factory, parts) -> None:
    brand = await factory.brand()
    ana = await _two_handle_person(db, brand.id)
    parts["sizes"].clear()
    batch = _batch("b")

    outcomes = await service.ingest(db, brand.id, batch)

    if db.is_sqlite:
        assert parts["sizes"] == [BATCH]
    else:
        assert len(parts["sizes"]) == service.PARTS and sum(parts["sizes"]) == BATCH
        assert parts["most"] >= 2, "the parts ran one after another"
    by_key = {m.external_id: o for m, o in zip(batch, outcomes)}
    assert [o.duplicate for o in outcomes].count(True) == 1 and outcomes[500].duplicate
    assert outcomes[500].id == outcomes[300].id
    ana_turns = {by_key[f"b{n}"].turn_id for n in (10, 200, 400, 11, 201, 401)}
    assert len(ana_turns) == 1 and {by_key[f"b{n}"].person_id for n in (10, 11, 401)} == {ana}

    def stored(conn: Connection) -> dict[str, Any]:
        return {
            "interactions": conn.scalar(select(func.count()).select_from(Interaction)),
            "distinct": conn.scalar(select(func.count(func.distinct(Interaction.external_id)))),
            "ana_open": conn.scalar(select(func.count()).select_from(Turn).where(
                Turn.person_id == ana, Turn.status.in_(OPEN_TURN_STATES))),
            "reply": conn.scalar(select(Interaction.conversation_key).where(Interaction.external_id == "breply")),
        }

    assert await db.run_read(stored) == {"interactions": BATCH, "distinct": BATCH, "ana_open": 1,
                                         "reply": "conv-1"}  # 599 of the batch and the seed


def test_split_apart_keeps_together_what_shares_a_row() -> None:
    batch = _batch("s")
    people = {("x", "ana"): 7, ("x", "ana-too"): 7}
    lists = service.split_apart(batch, people, 3)
    assert sorted(i for part in lists for i in part) == list(range(BATCH))
    assert all(part == sorted(part) for part in lists)
    assert max(map(len, lists)) - min(map(len, lists)) <= 6  # the largest group, @ana's, is 6 long
    part_of = {i: n for n, part in enumerate(lists) for i in part}
    for together in ((10, 200, 400, 11, 201, 401), (50, 550), (300, 500)):
        assert len({part_of[i] for i in together}) == 1, together
    assert len(service.split_apart(batch, {}, 1)) == 1
    assert len(service.split_apart(batch[:2], {}, 3)) == 2  # never an empty part


async def _run(db: Database, *statements: str) -> None:
    def run(conn: Connection) -> None:
        for statement in statements:
            conn.execute(text(statement))

    await db.run_write(run)


@pytest.mark.postgres
async def test_a_batch_that_failed_part_way_is_completed_when_sent_again(db: Database, factory) -> None:
    brand = await factory.brand()
    batch = _batch("f")
    await _run(db, "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.external_id = "
                   "'f123' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$",
               "CREATE TRIGGER refuse_boom BEFORE INSERT ON interactions FOR EACH ROW EXECUTE FUNCTION refuse_boom()")
    try:
        with pytest.raises(DBAPIError, match="refused for the test"):
            await service.ingest(db, brand.id, batch)
        first = dict(await db.run_read(lambda conn: conn.execute(
            select(Interaction.external_id, Interaction.id)).all()))
        assert 0 < len(first) < BATCH - 1 and "f123" not in first  # the other parts are stored, not the failed one
    finally:
        await _run(db, "DROP TRIGGER refuse_boom ON interactions", "DROP FUNCTION refuse_boom()")

    outcomes = await service.ingest(db, brand.id, batch)

    again = {m.external_id: o for m, o in zip(batch, outcomes)}
    assert all(again[key].duplicate and again[key].id == id_ for key, id_ in first.items())
    assert not again["f123"].duplicate
    count = await db.run_read(lambda conn: conn.scalar(select(func.count()).select_from(Interaction)))
    assert count == BATCH - 1
