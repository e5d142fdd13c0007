"""Group commit: concurrent callers share a transaction, each hears its own answer, one bad item sinks none."""

from __future__ import annotations

import asyncio

import pytest

from assistant.db.group_commit import GroupCommit
from assistant.errors import AssistantError, Overloaded


async def test_concurrent_callers_share_commits_per_group_and_get_their_own_answers() -> None:
    commits: list[tuple[object, list[int]]] = []

    async def commit(group: object, items: list[int]) -> list[int]:
        commits.append((group, items))
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    batcher: GroupCommit[int, int] = GroupCommit(commit)
    answers = await asyncio.gather(*(batcher.submit(n % 2, n) for n in range(20)))
    assert answers == [n * 10 for n in range(20)]
    assert len(commits) < 20  # callers arriving during a commit shared the next one
    assert all(all(item % 2 == group for item in items) for group, items in commits)


async def test_one_bad_item_sinks_none_of_the_others() -> None:
    async def commit(group: object, items: list[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("poison")
        return items

    batcher: GroupCommit[int, int] = GroupCommit(commit)
    results = await asyncio.gather(*(batcher.submit(0, n) for n in (11, 12, 13, 14)), return_exceptions=True)
    assert results[:2] == [11, 12] and results[3] == 14
    assert isinstance(results[2], AssistantError) and "poison" not in str(results[2])


async def test_a_service_error_reaches_every_waiter_of_that_commit() -> None:
    async def commit(group: object, items: list[int]) -> list[int]:
        raise Overloaded(2)

    batcher: GroupCommit[int, int] = GroupCommit(commit)
    with pytest.raises(Overloaded):
        await batcher.submit(0, 1)
