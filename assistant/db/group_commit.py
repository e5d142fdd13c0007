"""Group commit: concurrent callers share one write transaction.

SQLite has one writer at a time, so thirty-two requests each committing alone would queue behind each other.
Instead, whatever arrives while a transaction runs goes into the next one, grouped by a key (the brand).
Every caller still gets its answer only after its item is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from assistant.errors import AssistantError

log = logging.getLogger("assistant.group_commit")

Item = TypeVar("Item")
Result = TypeVar("Result")

Commit = Callable[[Hashable, list[Item]], Awaitable[Sequence["Result | BaseException"]]]
"""Stores a group's items in one transaction; answers a result (or the error for that item) per item."""


class GroupCommit(Generic[Item, Result]):
    def __init__(self, commit: Commit, max_batch: int = 256) -> None:
        self.commit = commit
        self.max_batch = max_batch
        self._waiting: list[tuple[Hashable, Item, asyncio.Future[Result]]] = []
        self._leader: asyncio.Task[None] | None = None

    async def submit(self, group: Hashable, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((group, item, future))
        if self._leader is None or self._leader.done():
            self._leader = asyncio.create_task(self._commit_while_waiting())
        return await future

    async def _commit_while_waiting(self) -> None:
        while self._waiting:
            taken, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
            groups: dict[Hashable, list[tuple[Item, asyncio.Future[Result]]]] = defaultdict(list)
            for group, item, future in taken:
                groups[group].append((item, future))
            for group, entries in groups.items():
                await self._commit_group(group, entries)

    async def _commit_group(self, group: Hashable, entries: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            answers: Sequence[Result | BaseException] = await self.commit(group, [item for item, _ in entries])
        except AssistantError as exc:  # e.g. the database is overloaded: every waiter hears it
            answers = [exc] * len(entries)
        except Exception:
            if len(entries) > 1:  # one bad apple must not sink the rest: try each alone
                for entry in entries:
                    await self._commit_group(group, [entry])
                return
            log.exception("a group commit of one item failed")
            answers = [AssistantError("The request could not be stored")]
        for (_, future), answer in zip(entries, answers):
            if future.done():
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)
