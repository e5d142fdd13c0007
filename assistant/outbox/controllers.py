"""HTTP for the outbox: scheduling tools list, claim, renew, confirm and report replies (SPEC sections 5, 12)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.status_codes import HTTP_200_OK

from assistant.auth.guards import requires_scope
from assistant.auth.principal import Principal
from assistant.outbox import service
from assistant.outbox.schemas import Claimed, ClaimIn, FailedIn, PostedIn, Renewed, RenewIn, ReplyOut, ReplyStatus
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
          "reply is not handed out again until its lease ends. Each item carries its own `claim_token`, needed to "
          "renew, confirm or fail it; a new claim after the lease ended gets a new token and the old one is dead.")
    async def claim(self, data: ClaimIn, principal: Principal, services: Services) -> Claimed:
        return Claimed(items=await service.claim(services.db, principal, limit=data.limit,
                                                 lease_seconds=data.lease_seconds, platform=data.platform))

    @post("/{reply_id:int}/renew", operation_id="renewReplyClaim", status_code=HTTP_200_OK,
          summary="Extend the lease of a claim", description="The lease then ends `lease_seconds` from now. 409 "
          "when the claim is no longer this token's: its lease ended (even if nobody claimed the reply since), "
          "another claim took it, or it was confirmed or reported failed.")
    async def renew(self, reply_id: int, data: RenewIn, principal: Principal, services: Services) -> Renewed:
        return Renewed(lease_expires_at=await service.renew(services.db, principal, reply_id,
                                                            claim_token=data.claim_token,
                                                            lease_seconds=data.lease_seconds))

    @post("/{reply_id:int}/posted", operation_id="confirmReplyPosted", status_code=HTTP_200_OK,
          summary="Confirm a reply was posted", description="Only under a live claim of `claim_token`: 409 once "
          "its lease ended or another claim took the reply. Again with the same token and `external_id`: 200 and "
          "no change; a different `external_id`: 409.")
    async def posted(self, reply_id: int, data: PostedIn, principal: Principal, services: Services) -> ReplyOut:
        posting = service.posting(principal, reply_id, external_id=data.external_id, url=data.url,
                                  posted_at=data.posted_at, claim_token=data.claim_token)
        return await service.confirmer(services.db).submit(principal.brand_id, posting)

    @post("/{reply_id:int}/failed", operation_id="reportReplyFailed", status_code=HTTP_200_OK,
          summary="Report that posting failed", description="Only under a live claim of `claim_token` (409 "
          "otherwise, and nothing changes). `retry: true` puts the reply back as approved; `retry: false` fails "
          "it for good and sends its turn back to the reviewers.")
    async def failed(self, reply_id: int, data: FailedIn, principal: Principal, services: Services) -> ReplyOut:
        return await service.report_failure(services.db, principal, reply_id, error=data.error, retry=data.retry,
                                            claim_token=data.claim_token)
