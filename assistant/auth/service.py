"""Brands, API keys, users and reviewer tokens: creating them, and telling who a bearer token belongs to."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assistant.audit import record
from assistant.auth import secrets as tokens
from assistant.auth.passwords import MIN_LENGTH, hash_password
from assistant.auth.principal import API_SCOPES, ROLES, SYSTEM, Principal
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.tenancy import ApiKey, Brand, User, UserToken
from assistant.errors import Conflict, NotFound, Unauthorized, ValidationFailed

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class Issued:
    """A secret just created: the token is shown once and never stored."""

    id: int
    prefix: str
    token: str


async def create_brand(session: AsyncSession, slug: str, name: str, actor: Principal = SYSTEM) -> Brand:
    if not SLUG.match(slug):
        raise ValidationFailed.field("slug", "use 1 to 63 lowercase letters, digits and dashes")
    if not name.strip() or len(name) > 200:
        raise ValidationFailed.field("name", "give a name of 1 to 200 characters")
    if await session.scalar(select(Brand.id).where(Brand.slug == slug)) is not None:
        raise Conflict(f"a brand with slug {slug!r} already exists")
    brand = Brand(slug=slug, name=name.strip(), created_at=utcnow())
    session.add(brand)
    await session.flush()
    await record(session, actor, "brand.created", "brand", brand.id, brand_id=brand.id, slug=slug)
    return brand


def brand_by_slug(conn: Connection, slug: str) -> Any:
    """The brand's row; NotFound for an unknown slug.

    Transitional: given an ``AsyncSession`` (callers not yet on connections) it answers an awaitable of the
    ``Brand``."""
    if isinstance(conn, AsyncSession):
        session = conn

        async def orm() -> Brand:
            brand = await session.scalar(select(Brand).where(Brand.slug == slug))
            if brand is None:
                raise NotFound(f"no brand with slug {slug!r}")
            return brand
        return orm()
    found = conn.execute(select(*Brand.__table__.c).where(Brand.slug == slug)).first()
    if found is None:
        raise NotFound(f"no brand with slug {slug!r}")
    return found


async def only_brand(session: AsyncSession) -> Brand:
    """The brand, when there is exactly one (commands may then omit --brand)."""
    found = list((await session.execute(select(Brand).limit(2))).scalars())
    if len(found) != 1:
        raise ValidationFailed.field("brand", "name the brand with --brand" if found else "create a brand first")
    return found[0]


async def create_api_key(session: AsyncSession, brand_id: int, scopes: list[str], name: str = "",
                         actor: Principal = SYSTEM) -> Issued:
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if not scopes or unknown:
        raise ValidationFailed.field("scopes", f"choose from {', '.join(API_SCOPES)}")
    secret = tokens.new_secret(tokens.API_KEY_KIND)
    key = ApiKey(brand_id=brand_id, name=name, prefix=secret.prefix, secret_hash=secret.secret_hash,
                 scopes=sorted(set(scopes)), created_at=utcnow())
    session.add(key)
    await session.flush()
    await record(session, actor, "api_key.created", "api_key", key.id, brand_id=brand_id,
                 prefix=secret.prefix, scopes=key.scopes)
    return Issued(id=key.id, prefix=secret.prefix, token=secret.token)


async def revoke_api_key(session: AsyncSession, brand_id: int, key_id: int, actor: Principal = SYSTEM) -> None:
    result = await session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.brand_id == brand_id,
                                                        ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow()))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("no such active API key")
    await record(session, actor, "api_key.revoked", "api_key", key_id, brand_id=brand_id)


async def create_user(session: AsyncSession, brand_id: int, email: str, role: str, password: str | None,
                      display_name: str = "", actor: Principal = SYSTEM) -> User:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise ValidationFailed.field("email", "give a valid email address")
    if role not in ROLES:
        raise ValidationFailed.field("role", f"choose from {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_LENGTH:
        raise ValidationFailed.field("password", f"use at least {MIN_LENGTH} characters")
    user = User(brand_id=brand_id, email=email, role=role, display_name=display_name or email.split("@")[0],
                password_hash=hash_password(password) if password else None, created_at=utcnow())
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a user with email {email} already exists") from None
    await record(session, actor, "user.created", "user", user.id, brand_id=brand_id, email=email, role=role)
    return user


async def user_by_email(session: AsyncSession, email: str) -> User:
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user {email}")
    return user


async def create_user_token(session: AsyncSession, user: User, actor: Principal = SYSTEM) -> Issued:
    secret = tokens.new_secret(tokens.USER_TOKEN_KIND)
    row = UserToken(user_id=user.id, prefix=secret.prefix, secret_hash=secret.secret_hash, created_at=utcnow())
    session.add(row)
    await session.flush()
    await record(session, actor, "user_token.created", "user", user.id, brand_id=user.brand_id,
                 prefix=secret.prefix)
    return Issued(id=row.id, prefix=secret.prefix, token=secret.token)


class Authenticator:
    """Resolves bearer tokens, with a short cache so the hot ingest path does not read the key every time.

    A revoked key stops working within ``ttl`` seconds in every process, at once in the one that revoked it
    (the services call ``forget``)."""

    def __init__(self, db: Database, ttl: float = 2.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._pending: dict[str, asyncio.Future[Principal]] = {}

    def forget(self) -> None:
        self._cache.clear()

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized("Send Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Send Authorization: Bearer <token>")
        cached = self._cache.get(token)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        # When the entry expires, every request in flight with that token would look it up at once (32 at a
        # time under load, each a database round trip: the ingest p99 came from these stampedes every `ttl`).
        # They share one lookup instead.
        pending = self._pending.get(token)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        try:
            principal = await self._lookup(token)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(principal)
        finally:
            del self._pending[token]
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now + self.ttl, principal)
        return principal

    async def _lookup(self, token: str) -> Principal:
        parsed = tokens.split_token(token)
        if parsed is None:
            raise Unauthorized("Unknown or revoked token")
        return await self.db.run_read(_lookup, token, *parsed)


def _lookup(conn: Connection, token: str, kind: str, prefix: str) -> Principal:
    if kind == tokens.API_KEY_KIND:
        key = conn.execute(select(ApiKey.id, ApiKey.brand_id, ApiKey.prefix, ApiKey.scopes, ApiKey.revoked_at,
                                  ApiKey.secret_hash).where(ApiKey.prefix == prefix)).first()
        if key is None or key.revoked_at is not None or not tokens.matches(token, key.secret_hash):
            raise Unauthorized("Unknown or revoked token")
        return Principal(kind="api_key", id=key.id, brand_id=key.brand_id, label=key.prefix,
                         scopes=frozenset(key.scopes))
    row = conn.execute(
        select(UserToken.revoked_at, UserToken.secret_hash, User.id, User.brand_id, User.email, User.role,
               User.disabled).join(User, User.id == UserToken.user_id).where(UserToken.prefix == prefix)).first()
    if row is None or row.revoked_at is not None or row.disabled or not tokens.matches(token, row.secret_hash):
        raise Unauthorized("Unknown or revoked token")
    return user_principal(row)  # type: ignore[arg-type]


async def set_user_role(db: Database, actor: Principal, user_id: int, role: str) -> None:
    """An admin changes another user's role in their brand (never their own)."""
    if role not in ROLES:
        raise ValidationFailed.field("role", f"choose from {', '.join(ROLES)}")
    if user_id == actor.id:
        raise ValidationFailed.field("role", "you cannot change your own role")
    await _change_user(db, actor, user_id, "user.role_changed", role=role)


async def set_user_disabled(db: Database, actor: Principal, user_id: int, disabled: bool) -> None:
    """An admin disables (or enables again) a user of their brand; nobody disables themselves."""
    if user_id == actor.id and disabled:
        raise ValidationFailed.field("user", "you cannot disable yourself")
    await _change_user(db, actor, user_id, "user.disabled" if disabled else "user.enabled", disabled=disabled)


async def _change_user(db: Database, actor: Principal, user_id: int, action: str, **values: Any) -> None:
    """Change a user of the actor's brand (another brand's user is 404) and record it."""
    async with db.write() as session:
        done = await session.execute(update(User).where(User.id == user_id, User.brand_id == actor.brand_id)
                                     .values(**values))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound(f"no user {user_id}")
        await record(session, actor, action, "user", user_id, **values)


def user_principal(user: User) -> Principal:
    """Users read everything of their brand and decide on turns; no user holds the tools' scopes."""
    return Principal(kind="user", id=user.id, brand_id=user.brand_id, label=user.email,
                     scopes=frozenset({"read"}), role=user.role)
