"""Bearer secrets: shown once, stored as SHA-256 (they are long random strings, so a fast hash is enough),
recognised by a visible prefix. Passwords are a different matter and use argon2id (``passwords``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

API_KEY_KIND = "ak"
USER_TOKEN_KIND = "rt"


@dataclass(frozen=True)
class NewSecret:
    token: str
    """The whole secret, shown once."""
    prefix: str
    """Stored and shown in lists, so people can tell their keys apart."""
    secret_hash: str


def new_secret(kind: str) -> NewSecret:
    ident = secrets.token_hex(4)
    token = f"{kind}_{ident}_{secrets.token_urlsafe(24)}"
    return NewSecret(token=token, prefix=f"{kind}_{ident}", secret_hash=hash_secret(token))


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``(kind, prefix)`` of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in {API_KEY_KIND, USER_TOKEN_KIND} or len(parts[1]) != 8:
        return None
    return parts[0], f"{parts[0]}_{parts[1]}"


def matches(token: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(token), secret_hash)
