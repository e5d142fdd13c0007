"""Webhook signing secrets, encrypted at rest.

Signing needs the secret itself, so it cannot be hashed like an API key; it is stored encrypted (Fernet: AES-128
in CBC mode with an HMAC-SHA256, from ``cryptography``) under a key derived (HKDF-SHA256) from
``webhook_secret_key``, or from ``secret_key`` when that is not set. A copy of the database alone, a backup or a
dump, then holds no secret a forger could sign with. The secret is shown once, when it is made or rotated, and
never logged. Changing the key makes the stored secrets unreadable: keep ``webhook_secret_key`` fixed when you
rotate ``secret_key`` (or rotate every webhook's secret after).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from assistant.settings import PREFIX, Settings, SettingsError

_PURPOSE = b"reply-assistant webhook signing secrets v1"


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with the configured key (the key changed, or the row was altered)."""


class SecretBox:
    def __init__(self, key_material: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(key_material.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        material = settings.webhook_secret_key or settings.secret_key
        if not material:
            raise SettingsError(f"{PREFIX}SECRET_KEY (or {PREFIX}WEBHOOK_SECRET_KEY) is not set: webhook secrets are "
                                "stored encrypted with it")
        return cls(material)

    def seal(self, secret: str) -> str:
        """What the database stores for ``secret``."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretUnreadable("the webhook's secret does not decrypt with the configured key (was "
                                   f"{PREFIX}WEBHOOK_SECRET_KEY or {PREFIX}SECRET_KEY changed? rotate the webhook's "
                                   "secret)") from None


__all__ = ["SecretBox", "SecretUnreadable"]
