"""Limits every request meets before any handler, dependency or token check runs.

- JSON nested deeper than ``MAX_JSON_DEPTH`` is refused (400) before it is parsed: msgspec's parser recurses
  once per level, and a thousand levels raised ``RecursionError`` (a 500 with a logged traceback) on every
  JSON endpoint, without a token. Every JSON body of the service is a handful of levels deep.
- A path id (``{id:int}``) beyond the database's signed 64-bit integers names nothing: 404, instead of an
  overflow inside the database driver.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import ASGIApp, Receive, Scope, Send

from assistant.errors import BadRequest, NotFound

MAX_JSON_DEPTH = 32
DB_INT_MAX = 2**63 - 1

_OPENERS = {ord("["), ord("{")}
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
"""Every byte except brackets: ``bytes.translate(None, _BRACKETS)`` keeps only the brackets (C speed)."""
_QUOTES_AND_BRACKETS = bytes(range(256)).translate(None, b'"[]{}')


def json_depth_exceeded(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``body`` nests arrays and objects more than ``limit`` deep (brackets inside strings ignored).

    Linear and cheap: a body with at most ``2 * limit`` brackets cannot be too deep, which is every ordinary
    request. Otherwise escaped backslashes and quotes are dropped, then all but quotes and brackets, and the
    brackets between strings are walked (walking every byte in Python was 7% of a 1,000-mention batch). A
    backslash outside a string is not JSON: the parser stops there, and up to there the walk is exact."""
    if len(body.translate(None, _BRACKETS)) <= 2 * limit:
        return False
    outside = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _QUOTES_AND_BRACKETS).split(b'"')[::2]
    depth = 0
    for byte in b"".join(outside):
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def check_json_depth(body: bytes) -> None:
    if json_depth_exceeded(body):
        raise BadRequest(f"The JSON body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep")


class AssistantRequest(Request[Any, Any, Any]):
    """The app's request class: its JSON is depth-checked before it is parsed (``data`` parameters too)."""

    async def json(self) -> Any:
        check_json_depth(await self.body())
        return await super().json()


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's network address as the server saw it (the peer; no forwarding header is trusted)."""
    client = request.client
    return client.host if client is not None else "unknown"


class PathIdRangeMiddleware:
    """404 for a path id that no database row can carry (beyond a signed 64-bit integer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for value in (scope.get("path_params") or {}).values():
            if type(value) is int and not -DB_INT_MAX <= value <= DB_INT_MAX:
                raise NotFound("No such id")
        await self.app(scope, receive, send)
