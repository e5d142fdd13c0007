"""HTTP for relationship memory (SPEC 12): the people left behind, and a person's relationship summary."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import Parameter

from assistant.auth.guards import requires_scope
from assistant.auth.principal import Principal
from assistant.memory import left_behind
from assistant.memory.left_behind import LeftBehind
from assistant.pagination import Cursor, Limit, Page


class MemoryController(Controller):
    path = "/api/v1"
    tags = ["memory"]

    @get("/left-behind", operation_id="listLeftBehind", dependencies={"principal": requires_scope("read")},
         summary="People whose last message got no reply (rejected, skipped, failed, or past max_wait), "
                 "longest waiting first")
    async def left_behind(self, principal: Principal, state: State,
                          why: Annotated[str | None, Parameter(max_length=16)] = None,
                          limit: Limit = 50, cursor: Cursor = None) -> Page[LeftBehind]:
        return await left_behind.list_left_behind(state.db, principal.brand_id, limit=limit, cursor=cursor, why=why)
