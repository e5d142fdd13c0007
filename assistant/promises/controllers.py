"""HTTP for promises (SPEC 12): a person's promises, the brand's promises by status, settling one."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter

from assistant.auth.guards import requires_scope, requires_user
from assistant.auth.principal import Principal
from assistant.pagination import Cursor, Limit, Page
from assistant.services import Services
from assistant.promises import service
from assistant.promises.schemas import PromiseOut, SettleIn


class PromiseController(Controller):
    path = "/api/v1"
    tags = ["promises"]

    @get("/people/{person_id:int}/promises", operation_id="listPersonPromises",
         dependencies={"principal": requires_scope("read")},
         summary="What our replies promised this person: open and due first, then settled ones")
    async def person_promises(self, person_id: int, principal: Principal, services: Services) -> Page[PromiseOut]:
        items = await service.list_person_promises(services.db, principal.brand_id, person_id)
        return Page(items=items, next_cursor=None)

    @get("/promises", operation_id="listPromises", dependencies={"principal": requires_scope("read")},
         summary="The brand's promises in one status (default due), oldest due first")
    async def promises(self, principal: Principal, services: Services,
                       status: Annotated[str, Parameter(max_length=16)] = "due",
                       limit: Limit = 50, cursor: Cursor = None) -> Page[PromiseOut]:
        return await service.list_brand_promises(services.db, principal.brand_id, status=status, limit=limit,
                                                 cursor=cursor)

    @post("/promises/{promise_id:int}/settle", operation_id="settlePromise", status_code=200,
          dependencies={"principal": requires_user()},
          summary="Mark a promise kept or dropped (dropping needs a reason); 409 when already settled")
    async def settle(self, promise_id: int, data: SettleIn, principal: Principal, services: Services) -> PromiseOut:
        return await service.settle_promise(services.db, principal, promise_id, data.outcome, data.reason)
