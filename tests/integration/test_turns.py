"""The turn's life, walked from its table: every action from every status, allowed or not, at the service
level (``assistant.turns``) and through the HTTP API; plus the version check that makes one of two
concurrent deciders lose."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Connection, select

from assistant import turns
from assistant.db import Database
from assistant.db.turns import TURN_STATES, Draft, Turn
from assistant.errors import Conflict, TurnChanged
from assistant.mentions.service import ingest, validate
from tests.support import turn_states
from tests.support.factories import BrandKit, mention

NEXT: dict[str, dict[str, str]] = {
    # status           action -> the status it leads to; any action not listed is refused (409)
    "drafting":       {"join": "drafting", "draft": "pending_review", "escalate_by_rule": "escalated",
                       "skip": "skipped", "regenerate": "drafting", "erase": "skipped"},
    "pending_review": {"join": "drafting", "regenerate": "drafting", "approve": "approved", "reject": "rejected",
                       "escalate": "escalated", "erase": "skipped",
                       "redraft": "pending_review"},  # the model, back, replaces a fallback (issue 13)
    "escalated":      {"regenerate": "drafting", "approve": "approved", "reject": "rejected", "erase": "skipped"},
    "approved":       {"post": "posted", "fail": "failed", "erase": "skipped"},
    "failed":         {"regenerate": "drafting", "reject": "rejected", "escalate": "escalated", "erase": "skipped"},
    "posted":         {},
    "rejected":       {},
    "skipped":        {},
}
"""The turn's life as SPEC 3-5 describe it, written out here independently of ``turns.TRANSITIONS``."""

SERVICE_ACTIONS = [action for action in turns.TRANSITIONS if action != "join"]  # joining is ingest's: below


async def fresh_turn(db: Database, kit: BrandKit, status: str, handle: str, **fields: Any) -> int:
    """A turn of its own person (``handle``), walked through the table to ``status``."""
    [outcome] = await ingest(db, kit.id, [validate(mention(handle=handle, **fields))])
    assert outcome.status == "drafting"
    await turn_states.reach(db, outcome.turn_id, status, kit.reviewer_id)
    return outcome.turn_id


async def state(db: Database, turn_id: int) -> tuple[str, int]:
    status, version = await db.run_read(lambda conn: conn.execute(
        select(Turn.status, Turn.version).where(Turn.id == turn_id)).one())
    return status, version


def test_the_table_is_the_turns_life_as_specified() -> None:
    table = {status: {action: to for action, (allowed, to) in turns.TRANSITIONS.items() if status in allowed}
             for status in TURN_STATES}
    assert table == NEXT
    assert set(turn_states.PATHS) == set(TURN_STATES)  # every status is reachable, so every row is walked


async def test_every_action_from_every_status_moves_as_the_table_says(db, factory) -> None:
    kit = await factory.brand()
    wrong: list[str] = []
    for n, (status, action) in enumerate((s, a) for s in TURN_STATES for a in SERVICE_ACTIONS):
        turn_id = await fresh_turn(db, kit, status, f"@walker{n}")
        before = await state(db, turn_id)
        to = NEXT[status].get(action)
        try:
            await db.run_write(turn_states.act, turn_id, action, kit.reviewer_id)
        except TurnChanged:
            wrong.append(f"{status} --{action}--> TurnChanged (nobody else touched it)")
            continue
        except Conflict:
            if to is not None:
                wrong.append(f"{status} --{action}--> refused, the table allows it")
            elif await state(db, turn_id) != before:
                wrong.append(f"{status} --{action}--> refused but changed the turn")
            continue
        after = await state(db, turn_id)
        if to is None:
            wrong.append(f"{status} --{action}--> {after[0]}, the table forbids it")
        elif after != (to, before[1] + 1):
            wrong.append(f"{status} --{action}--> {after}, expected ({to}, version {before[1] + 1})")
    assert wrong == []


@pytest.mark.parametrize("status", TURN_STATES)
async def test_a_new_mention_joins_only_an_open_turn(db, factory, status) -> None:
    kit = await factory.brand()
    turn_id = await fresh_turn(db, kit, status, "@joiner", conversation_id="c1")
    draft_before = await db.run_read(lambda conn: conn.scalar(select(Turn.current_draft_id).where(Turn.id == turn_id)))

    [again] = await ingest(db, kit.id, [validate(mention(handle="@joiner", conversation_id="c1"))])

    if "join" in NEXT[status]:
        assert again.turn_id == turn_id and (await state(db, turn_id))[0] == "drafting"
        if draft_before is not None:  # the draft written before the mention is stale now
            assert await db.run_read(lambda conn: conn.scalar(select(Draft.stale).where(Draft.id == draft_before)))
    else:
        assert again.turn_id != turn_id and (await state(db, turn_id))[0] == status
        assert again.status == "drafting"


@pytest.fixture
async def other_process(database_url: str) -> AsyncIterator[Database]:
    """A second server or worker process's database: a pool of its own, whose transactions run beside the test's."""
    other = Database(database_url)
    yield other
    await other.dispose()


async def test_two_processes_placing_one_persons_mentions_at_once_open_one_turn(db, factory, other_process) -> None:
    """Two server processes (two pools), each with a mention of the same known person who has no open turn: the
    second waits for the first (the person's row) and joins the turn it opened. Before, on PostgreSQL, both found
    no open turn and each opened one: 39 of 40 tries."""
    kit = await factory.brand()
    for n in range(10):
        handle = f"@twice{n}"
        closed = await fresh_turn(db, kit, "posted", handle)
        first, second = await asyncio.gather(
            ingest(db, kit.id, [validate(mention(handle=handle))]),
            ingest(other_process, kit.id, [validate(mention(handle=handle))]))
        assert first[0].person_id == second[0].person_id
        assert first[0].turn_id == second[0].turn_id != closed, f"try {n}: two turns opened"


async def test_a_follow_up_opened_while_the_person_writes_in_is_one_turn(db, factory, other_process) -> None:
    """A promise falling due (``open_follow_up``, a worker) and a mention of the same person (a server) at once,
    the person with no open turn: one of them opens the turn and the other joins it."""
    kit = await factory.brand()
    since = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    for n in range(10):
        handle = f"@owed{n}"
        closed = await fresh_turn(db, kit, "posted", handle)
        person_id = await db.run_read(lambda conn: conn.scalar(select(Turn.person_id).where(Turn.id == closed)))
        (followed, _), [written] = await asyncio.gather(
            db.run_write(lambda conn: turns.open_follow_up(conn, kit.id, person_id, like_turn_id=closed,
                                                           waiting_since=since, now=since)),
            ingest(other_process, kit.id, [validate(mention(handle=handle))]))
        assert followed == written.turn_id != closed, f"try {n}: two turns opened"

async def test_of_two_deciders_who_read_the_same_turn_one_loses(db, factory) -> None:
    kit = await factory.brand()
    turn_id = await fresh_turn(db, kit, "pending_review", "@contested")
    read = await db.run_read(lambda conn: turns.load(conn, kit.id, turn_id))

    await db.run_write(lambda conn: turns.reject(conn, read, kit.reviewer_id, "first"))
    with pytest.raises(TurnChanged):
        await db.run_write(lambda conn: turns.escalate(conn, read, kit.admin_id, "second"))

    assert (await state(db, turn_id))[0] == "rejected"
    decisions = await db.run_read(_decisions, turn_id)
    assert decisions == ["reject"]  # the loser's decision row went with its transaction


def _decisions(conn: Connection, turn_id: int) -> list[str]:
    from assistant.db.turns import Decision
    return list(conn.scalars(select(Decision.action).where(Decision.turn_id == turn_id).order_by(Decision.id)))


async def test_a_drafter_that_worked_on_an_older_version_stores_nothing(db, factory) -> None:
    kit = await factory.brand()
    turn_id = await fresh_turn(db, kit, "drafting", "@slow")
    read = await db.run_read(lambda conn: turns.load(conn, kit.id, turn_id))
    await ingest(db, kit.id, [validate(mention(handle="@slow"))])  # joins: the version moves on

    with pytest.raises(TurnChanged):
        await db.run_write(lambda conn: turns.store_draft(conn, read, turn_states.draft_values("late")))

    drafts = await db.run_read(lambda conn: list(conn.scalars(select(Draft.id).where(Draft.turn_id == turn_id))))
    assert drafts == [] and (await state(db, turn_id))[0] == "drafting"


# Through the API: what a reviewer can ask, from every status ----------------------------------------------

API_ACTIONS = ("approve", "reject", "escalate", "regenerate")


async def _ask(client: Any, kit: BrandKit, db: Database, turn_id: int, action: str) -> Any:
    if action == "approve":
        current = await db.run_read(lambda conn: conn.scalar(select(Turn.current_draft_id).where(Turn.id == turn_id)))
        status = (await state(db, turn_id))[0]
        body: dict[str, Any] = {"draft_id": current} if current is not None and status != "escalated" else \
            {"text": "Hi, a person from our team is on it."}
    elif action == "regenerate":
        body = {"guidance": "shorter"}
    else:
        body = {"reason": "a reason"}
    return await client.post(f"/api/v1/turns/{turn_id}/{action}", json=body, headers=kit.reviewer)


async def test_every_reviewer_action_from_every_status_through_the_api(client, db, factory) -> None:
    kit = await factory.brand()
    wrong: list[str] = []
    for n, (status, action) in enumerate((s, a) for s in TURN_STATES for a in API_ACTIONS):
        turn_id = await fresh_turn(db, kit, status, f"@asker{n}")
        before = await state(db, turn_id)
        to = NEXT[status].get(action)
        answer = await _ask(client, kit, db, turn_id, action)
        after = await state(db, turn_id)
        if to is not None:
            if answer.status_code not in (200, 202) or after[0] != to:
                wrong.append(f"{status} --{action}--> {answer.status_code} {after[0]}: {answer.text}")
        elif (answer.status_code != 409 or answer.headers["content-type"] != "application/problem+json"
              or answer.json()["status"] != 409 or after != before):
            wrong.append(f"{status} --{action}--> {answer.status_code} {after[0]}, the table forbids it")
    assert wrong == []
