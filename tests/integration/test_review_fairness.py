"""The fairness view's figures and the audit page, on small datasets whose answers are known."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, update

from assistant.db.outbox import Reply
from assistant.db.people import Interaction
from assistant.errors import ValidationFailed
from assistant.review.service import audit_page, fairness
from tests.support.db import execute
from tests.support.review_helpers import pending_turn

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
PERIOD = {"since": T0, "until": T0 + dt.timedelta(days=1)}


async def answered(client, db, kit, handle: str, followers: int | None, wait_seconds: float) -> tuple[int, int]:
    """A turn that began at T0 and was approved ``wait_seconds`` later; answers (turn_id, person_id)."""
    author = {"handle": handle} | ({"followers": followers} if followers is not None else {})
    turn_id, draft_id = await pending_turn(client, db, kit, handle=handle, created_at=T0.isoformat(), author=author)
    response = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": draft_id},
                                 headers=kit.reviewer)
    assert response.status_code == 200, response.text
    await execute(db, update(Reply).where(Reply.turn_id == turn_id).values(
        approved_at=T0 + dt.timedelta(seconds=wait_seconds)))
    person_id = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()["person"]["id"]
    return turn_id, person_id


async def earlier_reply(db, kit, person_id: int, at: dt.datetime) -> None:
    await execute(db, insert(Interaction).values(brand_id=kit.id, person_id=person_id, direction="outbound",
                                                 platform="x", external_id=f"ours-{person_id}-{at.timestamp()}",
                                                 text="Thanks!", occurred_at=at, received_at=at))


async def test_fairness_by_audience_and_by_first_time_or_returning(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    _, quiet = await answered(client, db, kit, "@quiet", 120, 600)
    await answered(client, db, kit, "@mid", 5_000, 1200)
    _, famous = await answered(client, db, kit, "@famous", 250_000, 60)
    _, unknown = await answered(client, db, kit, "@unknown", None, 3000)
    await answered(client, db, kit, "@quiet2", 500, 1800)
    await earlier_reply(db, kit, famous, T0 - dt.timedelta(days=30))
    await earlier_reply(db, kit, unknown, T0 - dt.timedelta(minutes=1))
    await earlier_reply(db, kit, quiet, T0 + dt.timedelta(minutes=5))  # during this turn: still first-time
    await answered(client, db, kit, "@late", 10, 2 * 86400)  # approved after the period
    rejected, _ = await pending_turn(client, db, kit, handle="@rejected", created_at=T0.isoformat())
    await client.post(f"/api/v1/turns/{rejected}/reject", json={"reason": "spam"}, headers=kit.reviewer)
    await answered(client, db, other, "@elsewhere", 10, 5)

    report = await fairness(db, kit.id, **PERIOD)

    figures = lambda groups: {g.group: (g.turns, g.median_seconds, g.p90_seconds) for g in groups}  # noqa: E731
    assert (report.overall.turns, report.overall.median_seconds, report.overall.p90_seconds) == (5, 1200, 3000)
    assert figures(report.by_audience) == {
        "unknown": (1, 3000, 3000), "<1k": (2, 1200, 1800), "1k–10k": (1, 1200, 1200),
        "10k–100k": (0, None, None), "≥100k": (1, 60, 60)}
    assert list(figures(report.by_audience)) == ["unknown", "<1k", "1k–10k", "10k–100k", "≥100k"]
    assert figures(report.by_familiarity) == {"first_time": (3, 1200, 1800), "returning": (2, 1530, 3000)}


async def test_fairness_of_an_empty_period(db, factory):
    kit = await factory.brand()

    report = await fairness(db, kit.id, **PERIOD)

    assert report.overall.turns == 0 and report.overall.median_seconds is None
    assert all(g.turns == 0 for g in report.by_audience + report.by_familiarity)


async def test_fairness_wants_times_with_a_zone(db, factory):
    kit = await factory.brand()

    with pytest.raises(ValidationFailed):
        await fairness(db, kit.id, since=dt.datetime(2026, 11, 1), until=dt.datetime(2026, 12, 1))


async def test_audit_page_filters_and_pages_newest_first(client, db, factory):
    kit, other = await factory.brand(), await factory.brand()
    turns = [await pending_turn(client, db, kit, handle=f"@p{i}") for i in range(3)]
    await client.post(f"/api/v1/turns/{turns[0][0]}/reject", json={"reason": "a"}, headers=kit.reviewer)
    await client.post(f"/api/v1/turns/{turns[1][0]}/escalate", json={"reason": "b"}, headers=kit.admin)
    await client.post(f"/api/v1/turns/{turns[2][0]}/reject", json={"reason": "c"}, headers=kit.admin)
    other_turn, _ = await pending_turn(client, db, other)
    await client.post(f"/api/v1/turns/{other_turn}/reject", json={"reason": "x"}, headers=other.admin)

    rejected = await audit_page(db, kit.id, action="turn.rejected", limit=50, cursor=None)
    by_admin = await audit_page(db, kit.id, actor=kit.admin_email, limit=1, cursor=None)
    second = await audit_page(db, kit.id, actor=kit.admin_email, limit=1, cursor=by_admin.next_cursor)

    assert [e.subject_id for e in rejected.items] == [turns[2][0], turns[0][0]]
    assert [(e.action, e.subject_id) for e in by_admin.items + second.items] == [
        ("turn.rejected", turns[2][0]), ("turn.escalated", turns[1][0])]
    assert all(e.actor == kit.admin_email and e.actor_type == "user" for e in by_admin.items + second.items)
    assert second.next_cursor is None


async def test_the_fairness_page_draws_the_waits_and_says_whether_small_accounts_wait_longer(client, db, factory):
    from tests.integration.test_web import sign_in

    kit = await factory.brand()
    for i in range(5):
        await answered(client, db, kit, f"@small{i}", 100 + i, 3600 + 60 * i)
        await answered(client, db, kit, f"@big{i}", 50_000 + i, 300 + 10 * i)
    await sign_in(client, kit.reviewer_email, kit.password)

    html = (await client.get("/fairness?since=2026-11-20&until=2026-11-20")).text

    assert html.count('<svg class="chart"') == 2 and html.count('class="bar"') >= 3
    assert "Yes: people with fewer than 1,000 followers wait longer, a median of 62 min against 5 min" in html
    empty = (await client.get("/fairness?since=2020-01-01&until=2020-01-02")).text
    assert "No replies were approved in this period" in empty and "<svg" not in empty and "<table" not in empty
