"""Request dependencies that authenticate the caller, check its scope or role, and apply its rate limit.

A controller asks for ``principal: Principal`` and declares which dependency provides it::

    @post("/mentions", dependencies={"principal": requires_scope("ingest")})
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any, Callable, Protocol

from litestar import Request
from litestar.di import Provide
from litestar.params import Dependency

from assistant.auth import throttle
from assistant.auth.principal import Principal
from assistant.auth.service import Authenticator
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.errors import Forbidden, RateLimited, Unauthorized
from assistant.http import client_address


class RateLimiter:
    """A token bucket per caller (per process): ``per_minute`` requests, bursts up to a tenth of that."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 10.0)
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, key: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise RateLimited(max(1, math.ceil((1.0 - tokens) / self.rate)))
        self._buckets[key] = (tokens - 1.0, now)


Check = Callable[[Principal], None]


class FailedAuthentication:
    """Counts failed bearer-token authentication per address in the database (so every process sees it):
    ``free`` failures, then a growing delay up to a minute. Addresses told to wait are kept in memory, so their
    further attempts cost no token lookup."""

    def __init__(self, db: Database, free: int) -> None:
        self.db = db
        self.rule = throttle.Rule("auth-address", free=free, cap_seconds=60, forget_seconds=600)
        self._waiting: dict[str, float] = {}

    def check(self, address: str) -> None:
        until = self._waiting.get(address)
        if until is not None:
            left = until - time.monotonic()
            if left > 0:
                raise RateLimited(max(1, math.ceil(left)), "Too many failed authentications from this address")
            del self._waiting[address]

    async def failed(self, address: str) -> None:
        wait = await self.db.run_write(throttle.reserve, [(self.rule, self.rule.key(address))], utcnow())
        if wait:
            if len(self._waiting) > 10_000:
                self._waiting.clear()
            self._waiting[address] = time.monotonic() + wait
            raise RateLimited(wait, "Too many failed authentications from this address")


class Gatekeepers(Protocol):
    """What the guards use of the app's ``services`` dependency (``assistant.services.Services``, which sits
    above this package and so is named here by shape, not imported)."""

    @property
    def authenticator(self) -> Authenticator: ...

    @property
    def rate_limiter(self) -> RateLimiter: ...

    @property
    def failed_authentication(self) -> FailedAuthentication: ...


def _dependency(check: Check) -> Provide:
    async def principal(request: Request[Any, Any, Any],
                        services: Annotated[Gatekeepers, Dependency(skip_validation=True)]) -> Principal:
        address = client_address(request)
        services.failed_authentication.check(address)
        try:
            who = await services.authenticator.authenticate(request.headers.get("authorization"))
        except Unauthorized:
            await services.failed_authentication.failed(address)
            raise
        check(who)
        services.rate_limiter.hit(who.rate_key)
        return who

    return Provide(principal)


def requires_scope(scope: str) -> Provide:
    """An API key with ``scope``. ``read`` is also open to the brand's users."""

    def check(who: Principal) -> None:
        if scope not in who.scopes:
            raise Forbidden(f"This token lacks the {scope!r} scope")

    return _dependency(check)


def requires_admin() -> Provide:
    """Privacy requests (export, erase): an admin user, or an API key with the ``admin`` scope."""

    def check(who: Principal) -> None:
        if not (who.is_admin or "admin" in who.scopes):
            raise Forbidden("Only an admin, or an API key with the 'admin' scope, may do this")

    return _dependency(check)


def requires_user(role: str = "reviewer") -> Provide:
    """A signed-in human: any user for ``reviewer``, only admins for ``admin``. API keys never qualify."""

    def check(who: Principal) -> None:
        if not who.is_user:
            raise Forbidden("Only a reviewer or admin token may do this; API keys cannot")
        if role == "admin" and not who.is_admin:
            raise Forbidden("Only an admin may do this")

    return _dependency(check)


