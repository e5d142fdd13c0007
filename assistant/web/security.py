"""Sessions, CSRF tokens and security headers for the web pages.

Sessions live in a signed cookie (HMAC-SHA256 over the payload with the app's secret): the cookie holds the
user id, the user's session version (signing out or a new password moves it on), an expiry and a nonce, never
anything secret. Every request re-reads the user, so a disabled user, a changed role or an ended session takes
effect at once. The CSRF cookie is replaced at sign-in. CSRF is a signed double submit: a random ``ra_csrf`` cookie, and every form
carries ``_csrf_token`` = HMAC(secret, cookie); a POST without a matching pair is refused with 403. The JSON
API under ``/api/`` authenticates with bearer tokens and is not part of this.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import Connection, Row, select

from assistant.auth.principal import Principal
from assistant.auth.service import user_principal
from assistant.db.tenancy import User
from assistant.errors import Forbidden
from assistant.services import Services, services_of

SESSION_COOKIE = "ra_session"
CSRF_COOKIE = "ra_csrf"
CSRF_FIELD = "_csrf_token"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'; connect-src 'self'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
LOGIN_FAILED = "That email and password do not match an active account."


class LoginRequired(Exception):
    """No valid session: the pages answer with a redirect to the sign-in form."""


def secret_of(connection: ASGIConnection[Any, Any, Any, Any]) -> bytes:
    return services_of(connection).web_secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, value: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest())


def sign_session(secret: bytes, user_id: int, max_age: int, version: int = 0, now: float | None = None) -> str:
    payload = _b64(json.dumps({"u": user_id, "e": int((now or time.time()) + max_age), "v": version,
                               "n": secrets.token_urlsafe(8)}).encode())
    return f"{payload}.{_mac(secret, 'session', payload)}"


def read_session(secret: bytes, cookie: str | None, now: float | None = None) -> tuple[int, int] | None:
    """The user id and session version of a valid, unexpired session cookie; None for anything else."""
    if not cookie or len(cookie) > 500 or "." not in cookie:
        return None
    payload, _, mac = cookie.partition(".")
    if not hmac.compare_digest(mac, _mac(secret, "session", payload)):
        return None
    try:
        data = json.loads(_unb64(payload))
        user_id, expires, version = int(data["u"]), int(data["e"]), int(data.get("v", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if expires < (now or time.time()):
        return None
    return user_id, version


def csrf_token_for(secret: bytes, cookie_value: str) -> str:
    return _mac(secret, "csrf", cookie_value)


def csrf_valid(secret: bytes, cookie_value: str | None, submitted: Any) -> bool:
    if not cookie_value or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(submitted, csrf_token_for(secret, cookie_value))


def is_https(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


@dataclass(frozen=True)
class Viewer:
    """The signed-in human looking at a page."""

    user_id: int
    brand_id: int
    email: str
    display_name: str
    role: str
    principal: Principal

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_USER = select(User.id, User.brand_id, User.email, User.display_name, User.role, User.disabled,
               User.session_version)
_VIEWER = "assistant.viewer"
"""Where a request keeps its viewer once read, so the admin guard and the ``viewer`` dependency read it once."""


async def load_viewer(connection: ASGIConnection[Any, Any, Any, Any], services: Services) -> Viewer:
    """The signed-in user of this request, read afresh from the database (a disabled user, a changed role or an
    ended session takes effect at once); ``LoginRequired`` without a valid session. Each page request counts
    against the user's rate limit, the same one their reviewer token's API calls use (``RateLimited``: 429)."""
    cached = connection.scope.get(_VIEWER)  # type: ignore[misc]
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    session_of = read_session(secret_of(connection), connection.cookies.get(SESSION_COOKIE))
    if session_of is None:
        raise LoginRequired()
    user_id, version = session_of
    user = await services.db.run_read(_user_where, User.id == user_id)
    if user is None or user.disabled or user.session_version != version:  # signed out, or the password changed
        raise LoginRequired()
    viewer = Viewer(user_id=user.id, brand_id=user.brand_id, email=user.email, display_name=user.display_name,
                    role=user.role, principal=user_principal(user))
    await services.rate_limiter.hit(viewer.principal.rate_key)
    connection.scope[_VIEWER] = viewer  # type: ignore[literal-required]
    return viewer


async def provide_viewer(request: Request[Any, Any, Any], services: Services) -> Viewer:
    """The ``viewer`` dependency of every signed-in page."""
    return await load_viewer(request, services)


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard of the admin pages: a signed-in admin of the brand, else 403 (no session: the sign-in form)."""
    viewer = await load_viewer(connection, services_of(connection))
    if not viewer.is_admin:
        raise Forbidden("Only an admin may open this page")


def _user_where(conn: Connection, condition: Any) -> Row[Any] | None:
    return conn.execute(_USER.where(condition)).first()




class SecurityHeadersMiddleware:
    """Adds the strict headers to every response except the OpenAPI viewer (which loads its own scripts)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/schema"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
