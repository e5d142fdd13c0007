"""The authenticated caller of a request, as the services see it."""

from __future__ import annotations

from dataclasses import dataclass

API_SCOPES = ("ingest", "outbox", "read", "admin")
"""``admin`` on a key allows privacy requests (export, erase) and nothing else."""
ROLES = ("reviewer", "admin")


@dataclass(frozen=True)
class Principal:
    kind: str
    """``api_key`` or ``user``."""
    id: int
    brand_id: int
    label: str
    """Key prefix or user email: safe to log and show, never a secret."""
    scopes: frozenset[str] = frozenset()
    role: str | None = None

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def rate_key(self) -> str:
        return f"{self.kind}:{self.id}"


SYSTEM = Principal(kind="system", id=0, brand_id=0, label="system")
