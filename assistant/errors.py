"""The one exception tree of the service. Services raise these; ``app.py`` turns them into RFC 9457
problem details in exactly one place, so no handler builds an error response by hand::

    AssistantError                      500 (never raised for bad input)
    ├── BadRequest                      400  malformed JSON, unreadable body
    ├── Unauthorized                    401  missing, unknown or revoked token
    ├── Forbidden                       403  wrong scope or role
    ├── NotFound                        404  unknown id, or another brand's
    ├── Conflict                        409
    │   ├── StaleDraft                  409  the draft is no longer the turn's current one
    │   └── TurnChanged                 409  someone changed the turn since it was read (turns' version check)
    ├── PayloadTooLarge                 413
    ├── ValidationFailed                422  field errors: [{field, message}]
    │   └── PolicyBlocked               422  the text breaks a blocking rule: findings
    ├── RateLimited                     429  Retry-After
    └── Overloaded                      503  Retry-After: busy, out of room, or PostgreSQL out of reach

    ModelUnavailable  (not HTTP) the language model failed after its retries; drafting falls back.
    LocalModelError   (not HTTP) the packaged local model is not installed or its server did not start.
"""

from __future__ import annotations

from typing import Any


class AssistantError(Exception):
    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(self, detail: str | None = None, *, errors: list[dict[str, str]] | None = None,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []
        self.extra = extra or {}
        self.headers = headers or {}

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://reply-assistant.example/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(AssistantError):
    status, title, slug = 400, "Malformed request", "malformed"


class Unauthorized(AssistantError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(AssistantError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(AssistantError):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(AssistantError):
    status, title, slug = 409, "Conflict", "conflict"


class StaleDraft(Conflict):
    title, slug = "Draft is no longer current", "stale-draft"


class TurnChanged(Conflict):
    title, slug = "The turn changed meanwhile", "turn-changed"


class PayloadTooLarge(AssistantError):
    status, title, slug = 413, "Request body too large", "too-large"


class ValidationFailed(AssistantError):
    status, title, slug = 422, "Validation failed", "validation"

    @classmethod
    def field(cls, field: str, message: str) -> "ValidationFailed":
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}])


class PolicyBlocked(ValidationFailed):
    title, slug = "The text breaks a blocking policy rule", "policy-blocked"


class RateLimited(AssistantError):
    status, title, slug = 429, "Too many requests", "rate-limited"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail or f"Rate limit reached; retry in {retry_after} s",
                         headers={"Retry-After": str(retry_after)})


class Overloaded(AssistantError):
    status, title, slug = 503, "Service overloaded", "overloaded"

    def __init__(self, retry_after: int = 1, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ModelUnavailable(Exception):
    """The language model gave no usable answer after the allowed attempts."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class LocalModelError(Exception):
    """The packaged local model cannot run: its extra is not installed, or its server did not start. The message
    says what to do (``make local-model``), for the command line to print."""

