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


async def test_with_two_in_flight_a_second_commit_runs_while_the_first_waits_and_never_a_third() -> None:
    running, most, commits = 0, 0, []
    release = asyncio.Event()

    async def commit(group: object, items: list[int]) -> list[int]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        commits.append(list(items))
        await release.wait()
        running -= 1
        return items

    batcher: GroupCommit[int, int] = GroupCommit(commit, in_flight=2)
    first = asyncio.ensure_future(batcher.submit(0, 1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.submit(0, n)) for n in range(2, 12)]
    await asyncio.sleep(0.01)
    assert most == 2 and commits == [[1], list(range(2, 12))]  # the second took everything that was waiting
    later = [asyncio.ensure_future(batcher.submit(0, n)) for n in range(12, 15)]
    await asyncio.sleep(0.01)
    assert len(commits) == 2  # both places taken: these wait for a leader to come back for them
    release.set()
    assert await asyncio.gather(first, *rest, *later) == list(range(1, 15))
    assert most == 2 and commits[2:] == [list(range(12, 15))]


async def test_an_item_submitted_as_the_last_leader_finishes_is_still_committed() -> None:
    """The leader's last look at the queue and its leaving are one step: an item arriving right after it left
    starts a new leader, with one or with two in flight."""
    for in_flight in (1, 2):
        committed: list[int] = []

        async def commit(group: object, items: list[int]) -> list[int]:
            await asyncio.sleep(0)
            committed.extend(items)
            return items

        batcher: GroupCommit[int, int] = GroupCommit(commit, in_flight=in_flight)
        for n in range(50):  # each submit lands at a different point of the previous leader's exit
            waiting = [asyncio.ensure_future(batcher.submit(0, n))]
            for _ in range(n % 4):
                await asyncio.sleep(0)
            waiting.append(asyncio.ensure_future(batcher.submit(0, n + 1000)))
            assert await asyncio.wait_for(asyncio.gather(*waiting), 2) == [n, n + 1000]
        assert sorted(committed) == sorted([n for n in range(50)] + [n + 1000 for n in range(50)])
