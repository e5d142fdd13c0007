"""A brand's policy in the database: stored as its TOML source with a content hash, loaded once per hash."""

from __future__ import annotations

import functools

from sqlalchemy import Connection, bindparam, select, update

from assistant.audit import record
from assistant.auth.principal import SYSTEM, Principal
from assistant.db.tenancy import Brand
from assistant.errors import NotFound
from assistant.policy import Policy, default_policy, load_policy


def set_brand_policy(conn: Connection, brand_id: int, source: str, source_name: str = "policy.toml",
                     actor: Principal = SYSTEM) -> str:
    """Validate and store a new policy version; raises ``PolicyFileError`` and stores nothing if it is broken."""
    policy = load_policy(source, source_name=source_name)
    previous = conn.execute(select(Brand.policy_hash).where(Brand.id == brand_id)).first()
    if previous is None:
        raise NotFound(f"no brand {brand_id}")
    conn.execute(update(Brand).where(Brand.id == brand_id).values(policy_toml=source, policy_hash=policy.hash))
    record(conn, actor, "policy.updated", "brand", brand_id, brand_id=brand_id, policy_hash=policy.hash,
           previous_hash=previous.policy_hash)
    return policy.hash


_SOURCE = select(Brand.policy_toml).where(Brand.id == bindparam("brand_id"))


def brand_policy(conn: Connection, brand_id: int) -> Policy:
    """The brand's own policy, or the shipped default for a brand without one."""
    return policy_of(conn.scalar(_SOURCE, {"brand_id": brand_id}))


def policy_of(source: str | None) -> Policy:
    """A brand's policy from its stored source (the default when it has none), compiled once per source."""
    return _compiled(source) if source else default_policy()


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> Policy:
    return load_policy(source, source_name="stored policy")


def policy_source(conn: Connection, brand_id: int) -> str:
    """The brand's policy file as stored, or the shipped default's text for a brand without one."""
    return conn.scalar(_SOURCE, {"brand_id": brand_id}) or default_policy().source
