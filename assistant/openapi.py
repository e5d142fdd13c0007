"""The published OpenAPI document says what the service really answers (issue 13, finding 7).

Litestar documents each operation's success and its own 400 body. This adds, once, for every operation:
the problem details (``application/problem+json``) of every status it can answer (SPEC 5: 400 malformed,
401/403 auth, 404 unknown or another brand's id, 409 conflict, 413 too large, 422 validation, 429 and 503
with ``Retry-After``), ``additionalProperties: false`` on every request body that refuses unknown fields,
``security: []`` on the public operational endpoints, and the few extra successes (200 for a duplicate
mention). The test suite checks the document against the running service with schemathesis.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.spec import (Components, OpenAPI, OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, Operation,
                                   Reference,
                                   Schema)
from litestar.openapi.spec.enums import OpenAPIType

PROBLEM = "application/problem+json"
PUBLIC = {"healthz", "readyz"}
"""Operations anyone may call (no bearer token)."""
EXTRA_SUCCESS = {"createMention": (200, "The same (platform, external_id) again: the first answer's ids, "
                                        "`duplicate: true`, nothing stored twice")}
WHY = {
    400: "Malformed JSON, a body that is not UTF-8, or JSON nested too deep",
    401: "Missing, unknown, expired or revoked token",
    403: "The token lacks the scope or role",
    404: "Unknown id, or another brand's",
    409: "Conflict: the resource is no longer in the state this request expects",
    413: "The body is larger than 1 MiB",
    422: "Validation failed: `errors` names each field",
    429: "Rate limited: retry after `Retry-After` seconds",
    503: "Overloaded, or the database is busy, full or out of reach: retry after `Retry-After` seconds",
}
_NOT_THIS_CLAIM = ("The claim is no longer this `claim_token`'s: its lease ended (even if nobody claimed the reply "
                   "since), another claim took the reply, or it was already confirmed or reported failed. Do not "
                   "post it; nothing changed")
WHY_FOR = {
    ("renewReplyClaim", 409): _NOT_THIS_CLAIM,
    ("confirmReplyPosted", 409): _NOT_THIS_CLAIM + "; or this token confirmed it already with another `external_id`, "
                                                   "or that post id is already another message",
    ("reportReplyFailed", 409): _NOT_THIS_CLAIM,
}
"""Where an operation's reason for a status is more precise than ``WHY``'s."""


def _problem_schema() -> Schema:
    text = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT, title="Problem", description="RFC 9457 problem details",
        required=["type", "title", "status", "detail"],
        properties={
            "type": Schema(type=OpenAPIType.STRING, format="uri"),  # type: ignore[arg-type]
            "title": text, "detail": text,
            "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
            "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(
                type=OpenAPIType.OBJECT, required=["field", "message"],
                properties={"field": text, "message": text})),
        })


def _problem_response(status: int, why: str | None = None) -> OpenAPIResponse:
    headers = None
    if status in (429, 503):
        headers = {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
                                         description="Seconds to wait before trying again")}
    elif status == 401:
        headers = {"WWW-Authenticate": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING))}
    return OpenAPIResponse(description=why or WHY[status], headers=headers,
                           content={PROBLEM: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))})


def _statuses(path: str, method: str, operation: Operation) -> list[int]:
    public = operation.operation_id in PUBLIC
    has_body = operation.request_body is not None
    has_path_id = "{" in path
    statuses = [503]
    if not public:
        statuses += [401, 403, 429]
    if has_body:
        statuses += [400, 413, 422]
    if operation.parameters:
        statuses += [422]
    if has_path_id:
        statuses += [404]
        if method != "get":
            statuses += [409]
    return sorted(set(statuses))


def _forbid_unknown_fields(components: Components) -> None:
    refusing = {cls.__name__ for cls in _structs(msgspec.Struct) if cls.__struct_config__.forbid_unknown_fields}
    for name, schema in (components.schemas or {}).items():
        if isinstance(schema, Schema) and name in refusing:
            schema.additional_properties = False


def _structs(root: type) -> list[type]:
    found, stack = [], [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            found.append(sub)
            stack.append(sub)
    return found


def complete(document: OpenAPI) -> OpenAPI:
    """Add the problem responses, unknown-field refusals and public operations to ``document`` (in place)."""
    components = document.components if isinstance(document.components, Components) else Components()
    document.components = components
    components.schemas = dict(components.schemas or {})
    components.schemas["Problem"] = _problem_schema()
    _forbid_unknown_fields(components)
    for path, item in (document.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None:
                continue
            responses = dict(operation.responses or {})
            for status in _statuses(path, method, operation):
                responses[str(status)] = _problem_response(status, WHY_FOR.get((operation.operation_id or "", status)))
            extra = EXTRA_SUCCESS.get(operation.operation_id or "")
            if extra:
                status, why = extra
                model = next(r for code, r in responses.items() if code.startswith("2"))
                assert isinstance(model, OpenAPIResponse)
                responses[str(status)] = OpenAPIResponse(description=why, content=model.content)
            if operation.operation_id in PUBLIC:
                operation.security = []
            operation.responses = responses
    return document


def publish_complete_document(app: Litestar) -> None:
    """Build the app's document now, completed, so ``/schema`` serves exactly this."""
    complete(app.plugins.get(OpenAPIPlugin).provide_openapi())
