"""Brands, API keys, users and reviewer tokens: creating them, and telling who a bearer token belongs to."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

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


_BRAND = select(Brand.id, Brand.slug, Brand.name)
_USER = (User.id, User.brand_id, User.email, User.role)


def create_brand(conn: Connection, slug: str, name: str, actor: Principal = SYSTEM) -> Row[Any]:
    """A new brand (``id``, ``slug``, ``name``); a taken slug is a conflict."""
    if not SLUG.match(slug):
        raise ValidationFailed.field("slug", "use 1 to 63 lowercase letters, digits and dashes")
    if not name.strip() or len(name) > 200:
        raise ValidationFailed.field("name", "give a name of 1 to 200 characters")
    if conn.execute(select(Brand.id).where(Brand.slug == slug)).first() is not None:
        raise Conflict(f"a brand with slug {slug!r} already exists")
    brand = conn.execute(insert(Brand).values(slug=slug, name=name.strip(), created_at=utcnow())
                         .returning(Brand.id, Brand.slug, Brand.name)).one()
    record(conn, actor, "brand.created", "brand", brand.id, brand_id=brand.id, slug=slug)
    return brand


def brand_by_slug(conn: Connection, slug: str) -> Row[Any]:
    brand = conn.execute(_BRAND.where(Brand.slug == slug)).first()
    if brand is None:
        raise NotFound(f"no brand with slug {slug!r}")
    return brand


def only_brand(conn: Connection) -> Row[Any]:
    """The brand, when there is exactly one (commands may then omit --brand)."""
    found = conn.execute(_BRAND.limit(2)).all()
    if len(found) != 1:
        raise ValidationFailed.field("brand", "name the brand with --brand" if found else "create a brand first")
    return found[0]


def create_api_key(conn: Connection, brand_id: int, scopes: list[str], name: str = "",
                   actor: Principal = SYSTEM) -> Issued:
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if not scopes or unknown:
        raise ValidationFailed.field("scopes", f"choose from {', '.join(API_SCOPES)}")
    secret = tokens.new_secret(tokens.API_KEY_KIND)
    granted = sorted(set(scopes))
    key_id = conn.execute(insert(ApiKey).values(
        brand_id=brand_id, name=name, prefix=secret.prefix, secret_hash=secret.secret_hash, scopes=granted,
        created_at=utcnow()).returning(ApiKey.id)).scalar_one()
    record(conn, actor, "api_key.created", "api_key", key_id, brand_id=brand_id, prefix=secret.prefix,
           scopes=granted)
    return Issued(id=key_id, prefix=secret.prefix, token=secret.token)


def revoke_api_key(conn: Connection, brand_id: int, key_id: int, actor: Principal = SYSTEM) -> None:
    result = conn.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.brand_id == brand_id,
                                               ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow()))
    if result.rowcount != 1:
        raise NotFound("no such active API key")
    record(conn, actor, "api_key.revoked", "api_key", key_id, brand_id=brand_id)


def create_user(conn: Connection, brand_id: int, email: str, role: str, password: str | None,
                display_name: str = "", actor: Principal = SYSTEM) -> Row[Any]:
    """A new user (``id``, ``brand_id``, ``email``, ``role``); a taken email is a conflict."""
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise ValidationFailed.field("email", "give a valid email address")
    if role not in ROLES:
        raise ValidationFailed.field("role", f"choose from {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_LENGTH:
        raise ValidationFailed.field("password", f"use at least {MIN_LENGTH} characters")
    values = dict(brand_id=brand_id, email=email, role=role, display_name=display_name or email.split("@")[0],
                  password_hash=hash_password(password) if password else None, created_at=utcnow())
    try:
        with conn.begin_nested():
            user = conn.execute(insert(User).values(**values).returning(*_USER)).one()
    except IntegrityError:
        raise Conflict(f"a user with email {email} already exists") from None
    record(conn, actor, "user.created", "user", user.id, brand_id=brand_id, email=email, role=role)
    return user


def user_by_email(conn: Connection, email: str) -> Row[Any]:
    user = conn.execute(select(*_USER).where(User.email == email.strip().lower())).first()
    if user is None:
        raise NotFound(f"no user {email}")
    return user


def create_user_token(conn: Connection, user: Any, actor: Principal = SYSTEM) -> Issued:
    """A reviewer token for ``user`` (anything with its ``id`` and ``brand_id``), shown once."""
    secret = tokens.new_secret(tokens.USER_TOKEN_KIND)
    token_id = conn.execute(insert(UserToken).values(
        user_id=user.id, prefix=secret.prefix, secret_hash=secret.secret_hash, created_at=utcnow())
        .returning(UserToken.id)).scalar_one()
    record(conn, actor, "user_token.created", "user", user.id, brand_id=user.brand_id, prefix=secret.prefix)
    return Issued(id=token_id, prefix=secret.prefix, token=secret.token)


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
    await db.run_write(_change_user_row, actor, user_id, action, values)


def _change_user_row(conn: Connection, actor: Principal, user_id: int, action: str, values: dict[str, Any]) -> None:
    """Change a user of the actor's brand (another brand's user is 404) and record it."""
    done = conn.execute(update(User).where(User.id == user_id, User.brand_id == actor.brand_id).values(**values))
    if done.rowcount != 1:
        raise NotFound(f"no user {user_id}")
    record(conn, actor, action, "user", user_id, **values)


def user_principal(user: Any) -> Principal:
    """Users read everything of their brand and decide on turns; no user holds the tools' scopes."""
    return Principal(kind="user", id=user.id, brand_id=user.brand_id, label=user.email,
                     scopes=frozenset({"read"}), role=user.role)
