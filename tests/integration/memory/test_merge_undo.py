"""Undoing a merge gives each person back their own times: the one kept must not keep the folded person's
newer ``last_seen_at`` (it would sort them as recently active and hide them from the left-behind list),
unless they wrote again after the merge."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from assistant.db.people import Person
from assistant.people import service as people
from tests.support.review_helpers import post_mention

EARLY = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc)
LATE = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)


def seen(conn, person_id: int) -> dt.datetime:  # type: ignore[no-untyped-def]
    at = conn.scalar(select(Person.last_seen_at).where(Person.id == person_id))
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


async def two_people(client, kit) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    old = await post_mention(client, kit, handle="@ana", created_at=EARLY)
    new = await post_mention(client, kit, handle="@ana.insta", platform="instagram", created_at=LATE)
    return old["person_id"], new["person_id"]


async def test_undo_gives_the_kept_person_their_own_last_seen_back(client, db, factory):
    kit = await factory.brand()
    keep, fold = await two_people(client, kit)
    moved = await db.run_write(people.fold_person, kit.id, keep, fold)
    assert await db.run_read(seen, keep) == LATE

    await db.run_write(people.unfold_person, kit.id, keep, fold, moved)

    assert (await db.run_read(seen, keep), await db.run_read(seen, fold)) == (EARLY, LATE)


async def test_undo_keeps_a_last_seen_the_person_earned_after_the_merge(client, db, factory):
    kit = await factory.brand()
    keep, fold = await two_people(client, kit)
    moved = await db.run_write(people.fold_person, kit.id, keep, fold)
    later = await post_mention(client, kit, handle="@ana", created_at=LATE + dt.timedelta(days=2))
    assert later["person_id"] == keep

    await db.run_write(people.unfold_person, kit.id, keep, fold, moved)

    assert await db.run_read(seen, keep) == LATE + dt.timedelta(days=2)


async def test_a_merge_recorded_before_times_were_kept_still_undoes(client, db, factory):
    kit = await factory.brand()
    keep, fold = await two_people(client, kit)
    moved = await db.run_write(people.fold_person, kit.id, keep, fold)
    for key in ("last_seen_at", "merged_last_seen_at"):  # what an undo record of the previous release holds
        del moved["person_before"][key]

    await db.run_write(people.unfold_person, kit.id, keep, fold, moved)

    assert (await db.run_read(seen, keep), await db.run_read(seen, fold)) == (LATE, LATE)
