"""HTTP for history import (SPEC 5): an NDJSON body, one interaction a line, stored as history only."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post

from assistant.auth.guards import requires_scope
from assistant.auth.principal import Principal
from assistant.errors import BadRequest
from assistant.people.importer import ImportResult, import_ndjson_stream
from assistant.services import Services

ACCEPTED_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines",
                  "text/plain", "")


class HistoryImportController(Controller):
    path = "/api/v1/history"
    tags = ["history"]

    @post("/import", operation_id="importHistory", dependencies={"principal": requires_scope("ingest")},
          status_code=200, summary="Import earlier messages (NDJSON)",
          description="`Content-Type: application/x-ndjson`, one interaction a line with `direction` "
          "(`inbound` needs `author`; `outbound` is our reply: its person is that of `in_reply_to` or an explicit "
          "`recipient`). History only: no turns, no drafts. The whole body is one transaction; a line already "
          "stored is a duplicate; an invalid line is reported with its number and never sinks the rest.")
    async def import_history(self, request: Request[Any, Any, Any], principal: Principal,
                             services: Services) -> ImportResult:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in ACCEPTED_TYPES:
            raise BadRequest(f"Send the history as application/x-ndjson, not {media_type}")
        return await import_ndjson_stream(services.db, principal.brand_id, request.stream())

