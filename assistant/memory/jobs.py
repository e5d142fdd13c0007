"""Relationship memory's background work: the model's reading of an approved reply's promises, and the
worker's periodic sweep (promises falling due, turns waiting past the brand's ``max_wait``)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from sqlalchemy import Connection, select

from assistant.db import Database
from assistant.db.jobs import Job
from assistant.db.outbox import Reply
from assistant.db.tenancy import Brand
from assistant.model.client import LazyModelClient
from assistant.model.templates import environment
from assistant.errors import ModelUnavailable
from assistant.jobs.worker import JobFailed
from assistant.memory.left_behind import run_overdue_sweep
from assistant.memory.merges import Scanner
from assistant.policy.loader import promise_kinds_of
from assistant.policy.service import policy_of
from assistant.promises import service as promises
from assistant.promises.detection import model_promises
from assistant.settings import Settings

log = logging.getLogger("assistant.memory")


@dataclasses.dataclass(frozen=True)
class _ReplyToRead:
    reply: Any
    brand_name: str
    policy_source: str | None


class MemoryJobs:
    """Memory's jobs in a worker, asking the model through the worker's shared client (its owner closes it)."""

    def __init__(self, db: Database, settings: Settings, model: LazyModelClient) -> None:
        self.db = db
        self.settings = settings
        self.model = model
        self._scan_clues = Scanner(db)

    async def read_promises(self, job: Job) -> None:
        """The ``read_promises`` job: ask the model what the reply promises, keep what the patterns missed."""
        if not self.settings.llm_configured:
            return
        found = await self.db.run_read(_reply_to_read, job.subject_id or 0)
        if found is None:
            return
        policy = policy_of(found.policy_source)
        kinds = [kind.name for kind in promise_kinds_of(policy)]
        if not kinds:
            return
        variables = {"brand_name": found.brand_name, "kinds": kinds, "reply_text": found.reply.text}
        messages = [{"role": "system", "content": environment.get_template("read_promises.system.j2").render(variables)},
                    {"role": "user", "content": environment.get_template("read_promises.user.j2").render(variables)}]
        try:
            result = await self.model.client.complete(messages)
        except ModelUnavailable as exc:
            raise JobFailed(f"model unavailable: {exc.reason}") from None
        read = model_promises(policy, found.reply.text, result.text)
        if read:
            r = found.reply
            await self.db.run_write(lambda conn: promises.record_promises(
                conn, brand_id=r.brand_id, person_id=r.person_id, turn_id=r.turn_id, reply_id=r.id, found=read,
                at=r.approved_at))

    async def sweep(self) -> None:
        """Promises whose time came get their follow-up turn; turns past ``max_wait`` are reported once; new
        messages are read for clues that two people are one."""
        opened = await promises.run_sweep(self.db)
        if opened:
            log.info("promises fell due: follow-up turns %s", opened)
        overdue = await run_overdue_sweep(self.db)
        if overdue:
            log.info("turns overdue: %s", overdue)
        await self._scan_clues()


def _reply_to_read(conn: Connection, reply_id: int) -> _ReplyToRead | None:
    row = conn.execute(select(Reply.id, Reply.brand_id, Reply.person_id, Reply.turn_id, Reply.text, Reply.approved_at,
                              Brand.name, Brand.policy_toml).join(Brand, Brand.id == Reply.brand_id)
                       .where(Reply.id == reply_id)).first()
    return None if row is None else _ReplyToRead(row, row.name or "", row.policy_toml)


__all__ = ["MemoryJobs"]
