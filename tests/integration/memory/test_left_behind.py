"""Nobody left behind (issue 12, part 2): who, why and since when; the queue's count; turn.overdue once; the
share of people answered by audience size."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.turns import Turn
from assistant.db.webhooks import WebhookDelivery
from assistant.memory import left_behind
from assistant.review.answered import answered_shares
from assistant.policy.service import set_brand_policy
from assistant.webhooks import service as webhooks
from tests.conftest import DATABASE_UNDER_TEST
from tests.support.db import execute, scalars
from tests.support.memory_helpers import approved_reply
from tests.support.review_helpers import pending_turn, post_mention


async def set_turn(db: Database, turn_id: int, **values) -> None:
    await execute(db, update(Turn).where(Turn.id == turn_id).values(**values))


async def late_turns(client, db: Database, kit, count: int) -> list[int]:
    """``count`` turns in review, each waiting past the default ``max_wait`` (4h), the longest waiting first."""
    late = []
    for n in range(count):
        turn_id, _ = await pending_turn(client, db, kit, handle=f"@late{n}")
        await set_turn(db, turn_id, waiting_since=utcnow() - dt.timedelta(hours=10 - n))
        late.append(turn_id)
    return late


async def test_who_is_left_behind_why_and_since_when(client, db, factory):
    kit = await factory.brand()
    now = utcnow()
    rejected = (await post_mention(client, kit, handle="@rej"))["turn_id"]
    await set_turn(db, rejected, status="rejected", decided_at=now - dt.timedelta(hours=1),
                   waiting_since=now - dt.timedelta(hours=9))
    skipped = (await post_mention(client, kit, handle="@skip"))["turn_id"]
    await set_turn(db, skipped, status="skipped", waiting_since=now - dt.timedelta(hours=8))
    failed = (await post_mention(client, kit, handle="@fail"))["turn_id"]
    await set_turn(db, failed, status="failed", waiting_since=now - dt.timedelta(hours=7))
    overdue, _ = await pending_turn(client, db, kit, handle="@late")
    await set_turn(db, overdue, waiting_since=now - dt.timedelta(hours=5))
    fresh, _ = await pending_turn(client, db, kit, handle="@fresh")  # within max_wait (4h): not left behind
    await set_turn(db, fresh, waiting_since=now - dt.timedelta(hours=3))
    answered = await approved_reply(client, db, kit, handle="@happy")
    again = (await post_mention(client, kit, handle="@again"))["turn_id"]  # rejected, then wrote again
    await set_turn(db, again, status="rejected", waiting_since=now - dt.timedelta(hours=20))
    await post_mention(client, kit, handle="@again", text="@acme hello?", created_at=now)

    response = await client.get("/api/v1/left-behind", headers=kit.read)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["turn_id"], i["why"]) for i in items] == [
        (rejected, "rejected"), (skipped, "skipped"), (failed, "failed"), (overdue, "overdue")]
    assert items[0]["person"]["handles"] == [{"platform": "x", "handle": "rej"}]
    assert dt.datetime.fromisoformat(items[0]["since"]) == now - dt.timedelta(hours=1)
    assert dt.datetime.fromisoformat(items[3]["since"]) == now - dt.timedelta(hours=1)  # 5h waiting, 4h max_wait
    assert items[0]["last_mention_at"] and answered["turn_id"] not in [i["turn_id"] for i in items]

    page = (await client.get("/api/v1/left-behind?limit=3", headers=kit.read)).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = (await client.get(f"/api/v1/left-behind?limit=3&cursor={page['next_cursor']}", headers=kit.read)).json()
    assert [i["turn_id"] for i in rest["items"]] == [overdue] and rest["next_cursor"] is None
    only = (await client.get("/api/v1/left-behind?why=skipped", headers=kit.read)).json()["items"]
    assert [i["turn_id"] for i in only] == [skipped]

    assert await left_behind.count_left_behind(db, kit.id) == 4
    assert await left_behind.count_left_behind(db, kit.id, cap=2) == 3  # shown as "2+"

    other = await factory.brand()
    assert (await client.get("/api/v1/left-behind", headers=other.read)).json()["items"] == []
    assert (await client.get("/api/v1/left-behind", headers=kit.ingest)).status_code == 403
    bad = await client.get("/api/v1/left-behind?why=lost", headers=kit.read)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "why"
    assert (await client.get("/api/v1/left-behind?cursor=abc", headers=kit.read)).status_code == 422


async def test_the_brand_max_wait_decides_overdue(client, db, factory):
    kit = await factory.brand()
    await db.run_write(set_brand_policy, kit.id, '[service]\nmax_wait = "30m"\n')
    turn_id, _ = await pending_turn(client, db, kit)
    await set_turn(db, turn_id, waiting_since=utcnow() - dt.timedelta(minutes=45))
    [item] = (await client.get("/api/v1/left-behind", headers=kit.read)).json()["items"]
    assert item["why"] == "overdue"


async def test_turn_overdue_fires_once_even_with_several_sweeps(client, db, factory, settings):
    is_postgres = DATABASE_UNDER_TEST == "postgresql"
    kit = await factory.brand()
    await webhooks.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["turn.overdue"])
    late, _ = await pending_turn(client, db, kit, handle="@late")
    await set_turn(db, late, waiting_since=utcnow() - dt.timedelta(hours=5))
    fresh, _ = await pending_turn(client, db, kit, handle="@fresh")
    await set_turn(db, fresh, waiting_since=utcnow() - dt.timedelta(hours=1))

    if is_postgres:
        databases = [Database(settings.database_url) for _ in range(3)]
        try:
            results = await asyncio.gather(*(left_behind.run_overdue_sweep(d) for d in databases))
        finally:
            for d in databases:
                await d.dispose()
    else:
        results = [await left_behind.run_overdue_sweep(db) for _ in range(3)]
    assert sorted(t for r in results for t in r) == [late]
    assert await left_behind.run_overdue_sweep(db) == []
    events = await scalars(db, select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "turn.overdue"))
    assert [e["data"]["turn_id"] for e in events] == [late] and events[0]["data"]["max_wait_seconds"] == 4 * 3600


async def test_a_backlog_of_overdue_turns_is_told_in_one_sweep_each_once(client, db, factory, settings):
    kit = await factory.brand()
    await webhooks.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["turn.overdue"])
    late = await late_turns(client, db, kit, 5)
    fresh, _ = await pending_turn(client, db, kit, handle="@fresh")
    await set_turn(db, fresh, waiting_since=utcnow() - dt.timedelta(hours=1))

    assert await left_behind.run_overdue_sweep(db) == late  # longest waiting first
    assert await left_behind.run_overdue_sweep(db) == []
    events = await scalars(db, select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "turn.overdue")
                           .order_by(WebhookDelivery.id))
    assert [e["data"]["turn_id"] for e in events] == late and fresh not in [e["data"]["turn_id"] for e in events]
    assert {e["data"]["status"] for e in events} == {"pending_review"}


@pytest.mark.postgres
async def test_a_sweep_leaves_the_turns_another_worker_is_marking_to_that_worker(client, db, factory, settings):
    """Another worker's sweep has marked the first late turn and not committed yet: this sweep waits for it on
    that row, then skips it and tells the others; nothing is told twice and no error is raised."""
    import asyncpg

    kit = await factory.brand()
    await webhooks.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["turn.overdue"])
    late = await late_turns(client, db, kit, 3)
    person_id = (await scalars(db, select(Turn.person_id).where(Turn.id == late[0])))[0]
    other = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    watcher = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))  # outside the transaction,
    sweeper = Database(settings.database_url)  # whose view of pg_stat_activity is taken once
    try:
        marking = other.transaction()
        await marking.start()
        await other.execute("INSERT INTO overdue_turns (turn_id, brand_id, person_id, waiting_since, created_at) "
                            "VALUES ($1, $2, $3, now(), now())", late[0], kit.id, person_id)
        sweep = asyncio.create_task(left_behind.run_overdue_sweep(sweeper))
        for _ in range(200):  # until the sweep waits for the other transaction on the marked row
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event = 'transactionid' AND query LIKE 'INSERT INTO overdue_turns%'")
            if waiting or sweep.done():
                break
            await asyncio.sleep(0.02)
        assert waiting == 1 and not sweep.done()
        await marking.commit()
        assert await sweep == late[1:]
    finally:
        await other.close()
        await watcher.close()
        await sweeper.dispose()
    events = await scalars(db, select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "turn.overdue"))
    assert sorted(e["data"]["turn_id"] for e in events) == late[1:]


async def test_the_share_of_people_answered_by_audience_size(client, db, factory):
    kit = await factory.brand()
    await approved_reply(client, db, kit, handle="@big", author={"handle": "@big", "followers": 50_000})
    rejected = (await post_mention(client, kit, handle="@small", author={"handle": "@small", "followers": 10}))
    await set_turn(db, rejected["turn_id"], status="rejected")
    await approved_reply(client, db, kit, handle="@small2", author={"handle": "@small2", "followers": 20})
    since = utcnow() - dt.timedelta(days=365 * 20)
    shares = {g.group: g for g in await answered_shares(db, kit.id, since=since, until=utcnow())}
    assert (shares["<1k"].people, shares["<1k"].answered, shares["<1k"].share) == (2, 1, 0.5)
    assert (shares["10k–100k"].people, shares["10k–100k"].share) == (1, 1.0)
    assert shares["unknown"].people == 0 and shares["unknown"].share is None
