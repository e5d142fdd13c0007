"""Group commit for single mentions: concurrent requests share one write transaction.

SQLite has one writer at a time, so thirty-two requests each committing alone would queue behind each other.
Instead, whatever arrives while a transaction runs goes into the next one. Every request still gets its
answer only after its mention is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from assistant.db import Database
from assistant.errors import AssistantError
from assistant.mentions.service import Mention, Outcome, ingest

log = logging.getLogger("assistant.ingest")

Waiting = tuple[int, Mention, "asyncio.Future[Outcome]"]


class Ingestor:
    def __init__(self, db: Database, max_batch: int = 256) -> None:
        self.db = db
        self.max_batch = max_batch
        self._waiting: list[Waiting] = []
        self._leader: asyncio.Task[None] | None = None

    async def submit(self, brand_id: int, mention: Mention) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((brand_id, mention, future))
        if self._leader is None or self._leader.done():
            self._leader = asyncio.create_task(self._commit_while_waiting())
        return await future

    async def _commit_while_waiting(self) -> None:
        while self._waiting:
            taken, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
            by_brand: dict[int, list[Waiting]] = defaultdict(list)
            for item in taken:
                by_brand[item[0]].append(item)
            for brand_id, items in by_brand.items():
                await self._commit(brand_id, items)

    async def _commit(self, brand_id: int, items: list[Waiting]) -> None:
        try:
            outcomes = await ingest(self.db, brand_id, [m for _, m, _ in items])
        except AssistantError as exc:  # e.g. the database is overloaded: every waiter hears it
            for _, _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception:
            if len(items) == 1:
                log.exception("storing mention %s failed", items[0][1].external_id)
                items[0][2].set_exception(AssistantError("The mention could not be stored"))
                return
            for item in items:  # one bad apple must not sink the rest: try each alone
                await self._commit(brand_id, [item])
            return
        for (_, _, future), outcome in zip(items, outcomes):
            if not future.done():
                future.set_result(outcome)
