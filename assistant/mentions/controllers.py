"""HTTP for mentions: parse, call the service, answer (SPEC section 5)."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from assistant.auth.guards import requires_scope
from assistant.auth.principal import Principal
from assistant.errors import ValidationFailed
from assistant.mentions import service
from assistant.mentions.schemas import BatchItemResult, BatchResult, MentionAccepted, MentionBatchIn, MentionIn, MentionOut
from assistant.services import Services


class MentionController(Controller):
    path = "/api/v1/mentions"
    tags = ["mentions"]

    @post("/", operation_id="createMention", dependencies={"principal": requires_scope("ingest")},
          summary="Push one mention", description="Stored durably before the answer. 202 when new; the same "
          "(platform, external_id) again answers 200 with the same ids and `duplicate: true`.",
          status_code=HTTP_202_ACCEPTED)
    async def create(self, data: MentionIn, principal: Principal, services: Services) -> Response[MentionAccepted]:
        mention = service.validate(data)
        outcome = await service.ingestor(services.db).submit(principal.brand_id, mention)
        return Response(MentionAccepted(id=outcome.id, turn_id=outcome.turn_id, person_id=outcome.person_id,
                                        status=outcome.status, duplicate=outcome.duplicate),
                        status_code=HTTP_200_OK if outcome.duplicate else HTTP_202_ACCEPTED)

    @post("/batch", operation_id="createMentionBatch", dependencies={"principal": requires_scope("ingest")},
          summary="Push 1 to 1,000 mentions", description="Answers item by item; an invalid item never sinks "
          "the others. After an error answer (5xx, a timeout), send the same batch again: part of it may be stored "
          "already, and those mentions answer as duplicates with the ids they got, the rest are stored.",
          status_code=HTTP_200_OK)
    async def batch(self, data: MentionBatchIn, principal: Principal, services: Services) -> BatchResult:
        results: list[BatchItemResult | None] = [None] * len(data.mentions)
        valid: list[tuple[int, service.Mention]] = []
        for index, item in enumerate(data.mentions):
            try:
                valid.append((index, service.validate(item)))
            except ValidationFailed as exc:
                results[index] = BatchItemResult(index=index, status="invalid", errors=exc.errors)
        if valid:
            outcomes = await service.ingest(services.db, principal.brand_id, [m for _, m in valid])
            for (index, _), outcome in zip(valid, outcomes):
                results[index] = BatchItemResult(index=index, status="duplicate" if outcome.duplicate else "accepted",
                                                 id=outcome.id, turn_id=outcome.turn_id, person_id=outcome.person_id)
        return BatchResult(results=[r for r in results if r is not None])

    @get("/{mention_id:int}", operation_id="getMention", dependencies={"principal": requires_scope("read")})
    async def get_one(self, mention_id: int, principal: Principal, services: Services) -> MentionOut:
        return await service.get_mention(services.db, principal.brand_id, mention_id)
