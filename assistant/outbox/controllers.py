"""HTTP for the outbox: scheduling tools list, claim, confirm and report replies (SPEC section 5)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.status_codes import HTTP_200_OK

from assistant.auth.guards import requires_scope
from assistant.auth.principal import Principal
from assistant.outbox import service
from assistant.outbox.schemas import Claimed, ClaimIn, FailedIn, PostedIn, ReplyOut, ReplyStatus
from assistant.pagination import Cursor, Limit, Page
from assistant.services import Services


class ReplyController(Controller):
    path = "/api/v1/replies"
    tags = ["outbox"]
    dependencies = {"principal": requires_scope("outbox")}

    @get("/", operation_id="listReplies", summary="Replies by status, oldest approval first")
    async def list_replies(self, principal: Principal, services: Services, status: ReplyStatus = "approved",
                           limit: Limit = 50, cursor: Cursor = None) -> Page[ReplyOut]:
        return await service.list_replies(services.db, principal.brand_id, status=status, limit=limit, cursor=cursor)

    @post("/claim", operation_id="claimReplies", status_code=HTTP_200_OK, summary="Take replies to post",
          description="Hands out approved replies, and claimed ones whose lease ended, under a lease: a claimed "
          "reply is not handed out again until its lease ends.")
    async def claim(self, data: ClaimIn, principal: Principal, services: Services) -> Claimed:
        return Claimed(items=await service.claim(services.db, principal, limit=data.limit,
                                                 lease_seconds=data.lease_seconds, platform=data.platform))

    @post("/{reply_id:int}/posted", operation_id="confirmReplyPosted", status_code=HTTP_200_OK,
          summary="Confirm a reply was posted", description="Again with the same `external_id`: 200 and no "
          "change. A different one: 409.")
    async def posted(self, reply_id: int, data: PostedIn, principal: Principal, services: Services) -> ReplyOut:
        posting = service.posting(principal, reply_id, external_id=data.external_id, url=data.url,
                                  posted_at=data.posted_at)
        return await service.confirmer(services.db).submit(principal.brand_id, posting)

    @post("/{reply_id:int}/failed", operation_id="reportReplyFailed", status_code=HTTP_200_OK,
          summary="Report that posting failed", description="`retry: true` puts the reply back as approved; "
          "`retry: false` fails it for good and sends its turn back to the reviewers.")
    async def failed(self, reply_id: int, data: FailedIn, principal: Principal, services: Services) -> ReplyOut:
        return await service.report_failure(services.db, principal, reply_id, error=data.error, retry=data.retry)
