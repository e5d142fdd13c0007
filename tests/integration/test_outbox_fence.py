"""Issue 13, finding 3: outbox claims fence. Only the holder of a claim's token, while its lease lasts, may
renew, confirm or fail the reply: a client that stalled past its lease is refused (409) even before anyone
claims the reply again, its stale report never puts back a reply another client holds, and with several
clients racing on short leases every reply is confirmed exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

from sqlalchemy import func, select, update

from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.audit import AuditEvent
from assistant.db.outbox import Reply
from assistant.db.people import Interaction
from assistant.errors import Conflict
from assistant.outbox import service
from assistant.outbox.schemas import ReplyOut
from tests.support.db import execute, rows, scalar, scalars
from tests.support.outbox_helpers import approved_replies, claim, reply_row

CLAIM = "/api/v1/replies/claim"


def at(reply_id: int, action: str) -> str:
    return f"/api/v1/replies/{reply_id}/{action}"


async def end_leases(db: Database, *reply_ids: int) -> None:
    """The client holding these stalls until its lease has ended (a GC pause, a slow platform, a laptop lid)."""
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(milliseconds=1)
    await execute(db, update(Reply).where(Reply.id.in_(reply_ids)).values(lease_until=past))


async def outbound_count(db: Database) -> int:
    return int(await scalar(db, select(func.count()).select_from(Interaction)
                            .where(Interaction.direction == "outbound")))


async def test_a_client_whose_lease_ended_cannot_confirm_and_the_next_claim_wins(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    stalled = (await claim(client, kit, lease_seconds=5))[reply_id]
    await end_leases(db, reply_id)

    # Nobody has claimed it again yet, and still: a lease that ended is no longer held.
    late = await client.post(at(reply_id, "posted"), json={"external_id": "late-1", "claim_token": stalled},
                             headers=kit.outbox)
    assert late.status_code == 409 and "ended" in late.json()["detail"], late.text
    assert late.headers["content-type"].startswith("application/problem+json")
    renewed = await client.post(at(reply_id, "renew"), json={"claim_token": stalled, "lease_seconds": 60},
                                headers=kit.outbox)
    assert renewed.status_code == 409
    assert (await reply_row(db, reply_id)).status == "claimed" and await outbound_count(db) == 0

    fresh = (await claim(client, kit))[reply_id]
    assert fresh != stalled
    for body in ({"external_id": "late-1"}, {"external_id": "late-2"}):
        again = await client.post(at(reply_id, "posted"), json=body | {"claim_token": stalled}, headers=kit.outbox)
        assert again.status_code == 409 and "not held by this claim token" in again.json()["detail"]
    won = await client.post(at(reply_id, "posted"), json={"external_id": "on-time", "claim_token": fresh},
                            headers=kit.outbox)
    assert won.status_code == 200 and won.json()["external_id"] == "on-time"
    after = await client.post(at(reply_id, "posted"), json={"external_id": "on-time", "claim_token": stalled},
                              headers=kit.outbox)
    assert after.status_code == 409, "the same post id from a dead claim is not that claim's confirmation"
    assert await outbound_count(db) == 1 and (await reply_row(db, reply_id)).external_post_id == "on-time"


async def test_a_stale_failure_report_is_refused_and_does_not_put_the_reply_back(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    stalled = (await claim(client, kit, lease_seconds=5))[reply_id]
    await end_leases(db, reply_id)
    for retry in (True, False):  # before anyone claimed it again
        answer = await client.post(at(reply_id, "failed"), json={"error": "timeout", "retry": retry,
                                                                 "claim_token": stalled}, headers=kit.outbox)
        assert answer.status_code == 409
    row = await reply_row(db, reply_id)
    assert (row.status, row.failures, row.error) == ("claimed", 0, None)

    holder = (await claim(client, kit))[reply_id]
    held = await reply_row(db, reply_id)
    for retry in (True, False):  # while another client holds it
        answer = await client.post(at(reply_id, "failed"), json={"error": "timeout", "retry": retry,
                                                                 "claim_token": stalled}, headers=kit.outbox)
        assert answer.status_code == 409 and "not held by this claim token" in answer.json()["detail"]
    row = await reply_row(db, reply_id)
    assert (row.status, row.failures, row.lease_until, row.claim_token_hash) == \
        ("claimed", 0, held.lease_until, service.token_digest(holder))
    assert (await client.post(CLAIM, json={"limit": 5, "lease_seconds": 60}, headers=kit.outbox)).json()["items"] == []
    posted = await client.post(at(reply_id, "posted"), json={"external_id": "p-1", "claim_token": holder},
                               headers=kit.outbox)
    assert posted.status_code == 200 and await outbound_count(db) == 1
    assert await scalars(db, select(AuditEvent.action).where(AuditEvent.subject_type == "reply")) == ["reply.posted"]


async def test_renewing_extends_the_lease_and_keeps_other_clients_off(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    token = (await claim(client, kit, lease_seconds=5))[reply_id]
    answer = await client.post(at(reply_id, "renew"), json={"claim_token": token, "lease_seconds": 600},
                               headers=kit.outbox)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"lease_expires_at"}
    expires = dt.datetime.fromisoformat(answer.json()["lease_expires_at"])
    assert 590 < (expires - dt.datetime.now(dt.timezone.utc)).total_seconds() <= 600
    assert (await reply_row(db, reply_id)).lease_until == expires

    # The first lease's five seconds, and one more, pass.
    await execute(db, update(Reply).values(lease_until=expires - dt.timedelta(seconds=6)))
    assert (await client.post(CLAIM, json={"limit": 5, "lease_seconds": 60}, headers=kit.outbox)).json()["items"] == []
    wrong = await client.post(at(reply_id, "renew"), json={"claim_token": token + "x", "lease_seconds": 600},
                              headers=kit.outbox)
    assert wrong.status_code == 409
    posted = await client.post(at(reply_id, "posted"), json={"external_id": "p-1", "claim_token": token},
                               headers=kit.outbox)
    assert posted.status_code == 200
    done = await client.post(at(reply_id, "renew"), json={"claim_token": token, "lease_seconds": 60},
                             headers=kit.outbox)
    assert done.status_code == 409 and "posted" in done.json()["detail"]


async def test_confirming_again_with_the_same_token_gets_the_same_answer(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    token = (await claim(client, kit))[reply_id]
    body = {"external_id": "p-1", "url": "https://x.example/p-1", "claim_token": token}
    first = await client.post(at(reply_id, "posted"), json=body, headers=kit.outbox)
    again = await client.post(at(reply_id, "posted"), json=body, headers=kit.outbox)
    assert (first.status_code, again.status_code) == (200, 200) and again.json() == first.json()
    assert await outbound_count(db) == 1


async def test_a_wrong_token_is_refused_and_changes_nothing(client, db, factory):
    kit = await factory.brand()
    first, second = await approved_replies(db, kit, 2)
    tokens = await claim(client, kit, limit=2)
    before = await reply_row(db, first)
    for token in ("ct_" + "A" * 43, tokens[second]):  # made up, and another reply's live token
        for action, body in (("posted", {"external_id": "p-1"}), ("failed", {"error": "e", "retry": True}),
                             ("renew", {"lease_seconds": 600})):
            answer = await client.post(at(first, action), json=body | {"claim_token": token}, headers=kit.outbox)
            assert answer.status_code == 409, (action, answer.text)
            assert answer.json()["type"].endswith("/conflict") and token not in answer.text
    after = await reply_row(db, first)
    assert (after.status, after.lease_until, after.claim_token_hash, after.failures) == \
        (before.status, before.lease_until, before.claim_token_hash, 0)
    assert await outbound_count(db) == 0


async def test_an_approved_reply_must_be_claimed_before_it_is_confirmed(client, db, factory):
    kit = await factory.brand()
    [reply_id] = await approved_replies(db, kit, 1)
    answer = await client.post(at(reply_id, "posted"), json={"external_id": "p-1", "claim_token": "ct_guess"},
                               headers=kit.outbox)
    assert answer.status_code == 409 and "claim it first" in answer.json()["detail"]
    assert (await reply_row(db, reply_id)).status == "approved"


async def test_racing_clients_on_short_leases_confirm_every_reply_exactly_once(database_url, db, factory):
    """Four clients, each with its own engine (as separate processes would have), claim with one-second leases.
    Each stalls past its lease on every fourth reply it handles and then still tries to confirm it or to report
    it failed with its dead token, as the clients of the finding did. Otherwise a client renews before it posts
    and posts only if the renewal was granted."""
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 24)
    who = Principal(kind="api_key", id=1, brand_id=kit.id, label="test")
    clients = [Database(database_url) for _ in range(4)]
    accepted: list[tuple[int, int]] = []  # (reply, client) for every confirmation the service accepted
    refused_stale: list[int] = []

    async def posted_count() -> int:
        return int(await scalar(db, select(func.count()).select_from(Reply).where(Reply.status == "posted")))

    async def work(number: int, engine: Database) -> None:
        handled = itertools.count()
        while await posted_count() < len(ids):
            batch = await service.claim(engine, who, limit=2, lease_seconds=1, platform=None)
            if not batch:
                await asyncio.sleep(0.05)
                continue
            for item in batch:
                turn = next(handled)
                stall = turn % 4 == 1
                if stall:
                    await asyncio.sleep(1.1)  # past the one-second lease
                    if turn % 8 == 1:
                        with_failure = await _report_failure(engine, who, item.id, item.claim_token)
                        assert isinstance(with_failure, Conflict)
                        refused_stale.append(item.id)
                        continue
                else:
                    try:
                        await service.renew(engine, who, item.id, claim_token=item.claim_token, lease_seconds=1)
                    except Conflict:
                        continue  # the lease ran out while this client was busy: leave it to the next claim
                posting = service.posting(who, item.id, external_id=f"post-{item.id}-{number}", url=None,
                                          posted_at=None, claim_token=item.claim_token)
                [answer] = await service.confirm_posted(engine, [posting])
                if isinstance(answer, ReplyOut):
                    assert not stall, "a confirmation after the lease ended was accepted"
                    accepted.append((item.id, number))
                else:
                    assert isinstance(answer, Conflict), answer
                    if stall:
                        refused_stale.append(item.id)

    try:
        await asyncio.wait_for(asyncio.gather(*(work(n, c) for n, c in enumerate(clients))), timeout=240)
    finally:
        for engine in clients:
            await engine.dispose()
    assert sorted(reply for reply, _ in accepted) == sorted(ids), "every reply confirmed exactly once"
    assert len(refused_stale) >= len(clients), "every client stalled at least once"
    assert len({number for _, number in accepted}) > 1, "the clients should have shared the work"
    replies = await rows(db, select(Reply.id, Reply.status, Reply.failures, Reply.external_post_id))
    outbound = await scalars(db, select(Interaction.turn_id).where(Interaction.direction == "outbound"))
    assert {(r.status, r.failures) for r in replies} == {("posted", 0)}
    assert {r.external_post_id for r in replies} == {f"post-{reply}-{number}" for reply, number in accepted}
    assert len(outbound) == len(set(outbound)) == len(ids)


async def _report_failure(engine: Database, who: Principal, reply_id: int, token: str) -> ReplyOut | Conflict:
    try:
        return await service.report_failure(engine, who, reply_id, error="timed out", retry=True, claim_token=token)
    except Conflict as refused:
        return refused
