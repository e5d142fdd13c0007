"""The parts of the running service that handlers, the worker and the command line share, built once.

``Services`` is typed and frozen. ``create_app`` provides it to handlers by dependency injection (a handler
asks for ``services: Services``); a standalone worker or a CLI command builds its own with ``Services.build``.
It is one object rather than one dependency per part because Litestar resolves independent dependencies of
a handler in a task group, which cost about 0.1 ms of CPU per request on the ingest path; everything here
hangs off this one dependency instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.di import Provide

from assistant.auth.guards import FailedAuthentication, RateLimiter
from assistant.auth.service import Authenticator
from assistant.db import Database
from assistant.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    authenticator: Authenticator
    """Resolves bearer tokens (cached briefly); ``forget()`` after revoking a key or disabling a user."""
    rate_limiter: RateLimiter
    """Requests per minute per API key or user, API and pages, counted in the database (all processes)."""
    failed_authentication: FailedAuthentication
    """Failed bearer-token authentication per address, counted in the database (all processes)."""
    web_secret: bytes
    """Signs session cookies and CSRF tokens; random per process when no secret key is set (the demo)."""

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database.from_settings(settings)
        secret = settings.secret_key or ""
        return cls(settings=settings, db=db, authenticator=Authenticator(db),
                   rate_limiter=RateLimiter(db, settings.rate_limit_per_minute),
                   failed_authentication=FailedAuthentication(db, settings.auth_failures_per_address),
                   web_secret=secret.encode() if secret else secrets.token_bytes(32))

    def provide(self) -> Provide:
        """The app-wide ``services`` dependency."""

        def services() -> Services:
            return self

        return Provide(services, use_cache=True, sync_to_thread=False)


APP_STATE_KEY = "services"


def app_services(app: Litestar) -> Services:
    """The services an app was built with (tests reach the app's own database and authenticator this way)."""
    return app.state[APP_STATE_KEY]  # type: ignore[no-any-return]


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    """For the hooks dependency injection does not reach: ``before_request``, guards, exception handlers."""
    return app_services(connection.app)


__all__ = ["Services", "app_services", "services_of"]
