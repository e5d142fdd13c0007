"""Wires the web pages into the app: routes, templates, static files, sessions, CSRF and security headers.

The pages live on one router whose ``before_request`` refuses any unsafe request without a valid CSRF token
(403), which provides the signed-in ``viewer`` to the handlers that ask for it, and whose exception handlers
answer in HTML: no session → redirect to ``/login``; a service error → the error page with its status; a form
that does not decode → the error page (400) naming the field. The admin pages sit on a router of their own
behind the ``admin_only`` guard. The JSON API under ``/api/`` is untouched (bearer tokens, no CSRF).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins import InitPluginProtocol
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from assistant.errors import AssistantError, Forbidden
from assistant.web.memory_pages import ADMIN_ROUTES as MEMORY_ADMIN_ROUTES, ROUTES as MEMORY_ROUTES
from assistant.web.live import STATE_KEY as LIVE_STATE_KEY, LiveStreams
from assistant.web.pages import ADMIN_ROUTES, ROUTES
from assistant.web.render import STATIC, error_page
from assistant.web.security import (CSRF_COOKIE, CSRF_FIELD, LoginRequired, SecurityHeadersMiddleware, admin_only,
                                    csrf_valid, provide_viewer, secret_of)

log = logging.getLogger("assistant")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    if request.method in SAFE_METHODS:
        return None
    content_type = request.headers.get("content-type", "")
    submitted = None
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        submitted = (await request.form()).get(CSRF_FIELD)
    submitted = submitted or request.headers.get("x-csrf-token")
    if not csrf_valid(secret_of(request), request.cookies.get(CSRF_COOKIE), submitted):
        raise Forbidden("This form was sent without a valid security token. Reload the page and try again.")
    return None


def _login_required(request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    if request.url.path in ("/queue/count", "/queue/events"):
        return Response({"detail": "sign in again"}, status_code=401)
    return Redirect("/login", status_code=303)


def _undecodable(exc: ValidationException) -> str:
    """What a reviewer reads when a form's field did not decode: the field, and what it should have been."""
    problems = [f"{item.get('key')}: {item.get('message')}" for item in exc.extra or []
                if isinstance(item, dict) and item.get("key")] if isinstance(exc.extra, list) else []
    return ("This form could not be read (" + "; ".join(problems) + "). Reload the page and try again."
            if problems else "This form could not be read. Reload the page and try again.")


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, AssistantError):
        status, title, detail = exc.status, exc.title, exc.detail
    elif isinstance(exc, ValidationException):
        status, title, detail = exc.status_code, "Request not accepted", _undecodable(exc)
    elif isinstance(exc, HTTPException):
        status, title, detail = exc.status_code, "Request not accepted", exc.detail
    else:
        log.exception("page failed: %s %s", request.method, request.url.path)
        status, title, detail = 500, "Something went wrong on our side", "It has been logged."
    if status >= 500 and isinstance(exc, AssistantError) and exc.status != 503:
        log.exception("page failed: %s %s", request.method, request.url.path)
    response = error_page(request, status, title, detail)
    if isinstance(exc, AssistantError):
        response.headers.update(exc.headers)  # Retry-After on 429/503
    return response


class WebPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        admin = Router(path="/admin", route_handlers=[*ADMIN_ROUTES, *MEMORY_ADMIN_ROUTES], guards=[admin_only])
        pages = Router(path="/", route_handlers=[*ROUTES, *MEMORY_ROUTES, admin], before_request=check_csrf, include_in_schema=False,
                       dependencies={"viewer": Provide(provide_viewer)},
                       exception_handlers={LoginRequired: _login_required, Exception: _error_page})
        static = create_static_files_router(path="/static", directories=[STATIC], name="web-static")
        app_config.route_handlers.extend([pages, static])
        app_config.state[LIVE_STATE_KEY] = LiveStreams()
        app_config.middleware.append(SecurityHeadersMiddleware)
        return app_config
