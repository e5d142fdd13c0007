"""HTTP for relationship memory (SPEC 12): the people left behind, and a person's relationship summary."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.params import Parameter

from assistant.auth.guards import requires_scope, requires_user
from assistant.auth.principal import Principal
from assistant.memory import left_behind, summaries
from assistant.memory.left_behind import LeftBehind
from assistant.memory.summaries import SummaryIn, SummaryOut
from assistant.pagination import Cursor, Limit, Page
from assistant.services import Services


class MemoryController(Controller):
    path = "/api/v1"
    tags = ["memory"]

    @get("/left-behind", operation_id="listLeftBehind", dependencies={"principal": requires_scope("read")},
         summary="People whose last message got no reply (rejected, skipped, failed, or past max_wait), "
                 "longest waiting first")
    async def left_behind(self, principal: Principal, services: Services,
                          why: Annotated[str | None, Parameter(max_length=16)] = None,
                          limit: Limit = 50, cursor: Cursor = None) -> Page[LeftBehind]:
        return await left_behind.list_left_behind(services.db, principal.brand_id, limit=limit, cursor=cursor, why=why)

    @get("/people/{person_id:int}/summary", operation_id="getPersonSummary",
         dependencies={"principal": requires_scope("read")},
         summary="The relationship summary of the person's older history (404 while it all fits the prompt)")
    async def summary(self, person_id: int, principal: Principal, services: Services) -> SummaryOut:
        return await summaries.get_summary(services.db, principal.brand_id, person_id)

    @put("/people/{person_id:int}/summary", operation_id="putPersonSummary",
         dependencies={"principal": requires_user()},
         summary="Rewrite the relationship summary (source becomes human)")
    async def edit_summary(self, person_id: int, data: SummaryIn, principal: Principal, services: Services) -> SummaryOut:
        return await summaries.put_summary(services.db, principal, person_id, data.text)
