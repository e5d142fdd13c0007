"""HTTP for the approval queue and a reviewer's decisions (SPEC section 5). Only users reach these: every
handler requires a reviewer or admin token, so no API key can list, approve, reject or escalate."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from assistant.auth.guards import requires_user
from assistant.auth.principal import Principal
from assistant.drafting.service import request_regenerate
from assistant.pagination import Cursor, Limit, Page
from assistant.review import service
from assistant.review.schemas import Approved, ApproveIn, Decided, ReasonIn, RegenerateIn, TurnOut
from assistant.services import Services


class TurnController(Controller):
    path = "/api/v1/turns"
    tags = ["turns"]
    dependencies = {"principal": requires_user()}

    @get("/", operation_id="listTurns", summary="The approval queue, in fair order",
         description="Oldest `waiting_since` first, then by id; never by follower count.")
    async def list_turns(self, principal: Principal, services: Services,
                         status: Annotated[str, Parameter(max_length=32)] = "pending_review",
                         limit: Limit = 50, cursor: Cursor = None) -> Page[TurnOut]:
        return await service.queue_page(services.db, principal.brand_id, limit=limit, cursor=cursor, status=status)

    @get("/{turn_id:int}", operation_id="getTurn", summary="One turn with its person, mentions, drafts and decisions")
    async def get_one(self, turn_id: int, principal: Principal, services: Services) -> TurnOut:
        return await service.get_turn(services.db, principal.brand_id, turn_id)

    @post("/{turn_id:int}/approve", operation_id="approveTurn", status_code=HTTP_200_OK,
          summary="Approve the current draft, as is or edited, or send a reply a human wrote",
          description="With `draft_id`: 409 when it is no longer the current draft or the turn was decided. "
                      "Without `draft_id` (null or omitted), `text` is required and becomes a draft with source "
                      "`human` (an `escalated` turn, or a `pending_review` one with no draft; 409 otherwise). "
                      "409 when the person is marked do-not-reply. 422 with `findings` when the final text breaks "
                      "a blocking rule (admins may override with a reason); a missing sign-off says what to "
                      "append (`append`, `suggested_text`).")
    async def approve(self, turn_id: int, data: ApproveIn, principal: Principal, services: Services) -> Approved:
        return await service.approve(services.db, principal, turn_id, draft_id=data.draft_id, text=data.text,
                                     override_reason=data.override_reason,
                                     default_max_length=services.settings.default_max_length,
                                     model_reads_promises=services.settings.llm_configured)

    @post("/{turn_id:int}/reject", operation_id="rejectTurn", status_code=HTTP_200_OK,
          summary="Reject the turn with a reason")
    async def reject(self, turn_id: int, data: ReasonIn, principal: Principal, services: Services) -> Decided:
        return await service.reject(services.db, principal, turn_id, data.reason)

    @post("/{turn_id:int}/escalate", operation_id="escalateTurn", status_code=HTTP_200_OK,
          summary="Escalate the turn with a reason")
    async def escalate(self, turn_id: int, data: ReasonIn, principal: Principal, services: Services) -> Decided:
        return await service.escalate(services.db, principal, turn_id, data.reason)

    @post("/{turn_id:int}/regenerate", operation_id="regenerateTurn", status_code=HTTP_202_ACCEPTED,
          summary="Ask for a new draft, optionally with guidance for the model")
    async def regenerate(self, turn_id: int, data: RegenerateIn, principal: Principal, services: Services) -> None:
        await request_regenerate(services.db, principal, turn_id, data.guidance)
