"""The one place where exceptions become RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from assistant.errors import AssistantError, BadRequest, PayloadTooLarge, ValidationFailed

log = logging.getLogger("assistant")

_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?:\.data)?\.?(?P<path>[^`]*)`)?$", re.S)
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")
ECHO_MAX_CHARS = 200
"""msgspec's messages quote what they refuse (an enum value, an unknown field's name): a long one is cut here, so
an answer of errors stays small whatever was sent."""


def field_errors(message: str, prefix: str = "") -> list[dict[str, str]]:
    """Turn msgspec's "Expected `str`, got `int` - at `$.author.handle`" into ``[{field, message}]``."""
    match = _AT_PATH.match(message)
    text = match.group("message") if match else message
    path = (match.group("path") if match else "") or ""
    named = _NAMED_FIELD.search(text)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    path = re.sub(r"^\[(\d+)\]", r"\1", path)
    field = ".".join(part for part in (prefix, path) if part) or "body"
    return [{"field": _clip(field), "message": _clip(text)}]


def _clip(text: str) -> str:
    return text if len(text) <= ECHO_MAX_CHARS else text[:ECHO_MAX_CHARS - 1] + "…"


def validation_failed(exc: msgspec.ValidationError, prefix: str = "") -> ValidationFailed:
    errors = field_errors(str(exc), prefix)
    return ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def decode(body: bytes, type_: Any) -> Any:
    """Decode JSON into a schema: malformed JSON is 400, a well-formed body that breaks the schema is 422."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise validation_failed(exc) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {_plain(exc)}") from None


def _plain(exc: Exception) -> str:
    text = str(exc)
    if "truncated" in text or "surrogate" in text:
        return "it is cut short or holds an unpaired UTF-16 surrogate escape"
    return text.removeprefix("JSON is malformed: ")


def _response(error: AssistantError) -> Response[Any]:
    return Response(content=error.problem(), status_code=error.status, media_type="application/problem+json",
                    headers=error.headers)


def _from_litestar(exc: HTTPException) -> AssistantError:
    if isinstance(exc, ValidationException):
        if isinstance(exc.__cause__, msgspec.ValidationError):
            return validation_failed(exc.__cause__)
        errors = [{"field": str(item.get("key") or "body"), "message": str(item.get("message", ""))}
                  for item in (exc.extra or []) if isinstance(item, dict)]  # type: ignore[union-attr]
        return ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors) or exc.detail,
                                errors=errors)
    if exc.status_code == 413:
        return PayloadTooLarge("The request body is larger than 1 MiB")
    if exc.status_code == 400:
        return BadRequest(_plain(Exception(exc.detail)) if "JSON" in exc.detail else exc.detail)
    error = AssistantError(exc.detail)
    error.status = exc.status_code
    error.title = exc.detail if exc.status_code < 500 else "Internal error"
    error.slug = {401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}.get(
        exc.status_code, "http-error")
    if isinstance(exc, NotAuthorizedException):
        error.headers = {"WWW-Authenticate": "Bearer"}
    if exc.headers:
        error.headers.update(exc.headers)
    return error


ErrorPage = Callable[[Request[Any, Any, Any], int, str, str], Response[Any]]
"""How the web layer draws an error for a person (status, title, detail); ``app.py`` hands it in, so this module
stays below the pages it serves."""


def handle_exception(request: Request[Any, Any, Any], exc: Exception, *,
                     error_page: ErrorPage | None = None) -> Response[Any]:
    if isinstance(exc, AssistantError):
        error = exc
    elif isinstance(exc, HTTPException):
        error = _from_litestar(exc)
    elif isinstance(exc, UnicodeDecodeError):  # a body that is not UTF-8, met while decoding the request
        error = BadRequest("The body is not valid UTF-8")
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        error = AssistantError("Something went wrong on our side; it has been logged")
    if error_page is not None and _wants_a_page(request):
        return error_page(request, error.status, *BROWSER_WORDS.get(error.status, (error.title, error.detail)))
    return _response(error)


BROWSER_WORDS = {
    404: ("Page not found", "There is nothing at this address. Check the link, or go back to the queue."),
    405: ("Page not found", "This address does not take that kind of request. Go back to the queue."),
    500: ("Something went wrong on our side", "It has been logged. Try again in a moment."),
}
"""What a person reading a browser sees for the errors an address (rather than a form) gets."""


def _wants_a_page(request: Request[Any, Any, Any]) -> bool:
    """A browser asking for a page (not the API, not the API docs): it gets the HTML error page, API clients
    keep problem+json."""
    path = request.url.path
    return (not path.startswith(("/api/", "/schema")) and "text/html" in request.headers.get("accept", ""))


