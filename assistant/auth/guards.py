"""Request dependencies that authenticate the caller, check its scope or role, and apply its rate limit.

A controller asks for ``principal: Principal`` and declares which dependency provides it::

    @post("/mentions", dependencies={"principal": requires_scope("ingest")})
"""

from __future__ import annotations

import asyncio
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
    """Requests per minute per caller (API key or user, on the API and the pages), counted in the database so the
    limit holds across processes: ``per_minute``, bursts up to a tenth of that (``throttle.take_allowance``).

    The cheap path: a process takes a share of the caller's allowance at once (a fiftieth of the minute's) and
    spends it in memory, asking the database again only when the share is spent; a caller told to wait is
    remembered until then, so its further requests cost no database write either."""

    def __init__(self, db: Database, per_minute: int) -> None:
        self.db = db
        self.per_minute = per_minute
        self.share = max(1, per_minute // 50)
        self._held: dict[str, int] = {}
        self._waiting: dict[str, float] = {}
        self._refills: dict[str, asyncio.Future[None]] = {}

    async def hit(self, key: str) -> None:
        while True:
            held = self._held.get(key, 0)
            if held > 0:
                self._held[key] = held - 1
                return
            until = self._waiting.get(key)
            if until is not None:
                left = until - time.monotonic()
                if left > 0:
                    raise RateLimited(max(1, math.ceil(left)))
                del self._waiting[key]
            # One refill per caller at a time: requests arriving together wait for it instead of each taking a
            # share (300 at once took 300 shares, spent the minute's burst and were refused).
            refill = self._refills.get(key)
            if refill is None:
                refill = self._refills[key] = asyncio.ensure_future(self._refill(key))
                refill.add_done_callback(lambda _: self._refills.pop(key, None))
            await asyncio.shield(refill)

    async def _refill(self, key: str) -> None:
        granted, wait = await self.db.run_write(throttle.take_allowance, throttle.hashed_key("rate", key),
                                                self.per_minute, self.share, utcnow())
        if len(self._held) + len(self._waiting) > 10_000:
            self._held.clear()
            self._waiting.clear()
        if not granted:
            self._waiting[key] = time.monotonic() + wait
            raise RateLimited(wait)
        self._held[key] = self._held.get(key, 0) + granted


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
        await services.rate_limiter.hit(who.rate_key)
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


