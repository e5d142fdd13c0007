"""Webhook signing secrets encrypted at rest: every secret stored in plain text is encrypted with the key from the
settings (``webhook_secret_key``, else derived from ``secret_key``); downgrading decrypts them again.

Revision ID: 0009_webhook_secrets_encrypted
Revises: 0008_outbox_claim_tokens
Create Date: 2026-11-30
"""
from alembic import context, op
import sqlalchemy as sa


revision = '0009_webhook_secrets_encrypted'
down_revision = '0008_outbox_claim_tokens'
branch_labels = None
depends_on = None

_PLAIN_PREFIX = "whsec_"


def _box():  # type: ignore[no-untyped-def]
    from assistant.settings import get_settings
    from assistant.webhooks.secret_box import SecretBox

    return SecretBox.from_settings(context.config.attributes.get("settings") or get_settings())


def _rewrite(plain: bool, action: str) -> None:
    """``SecretBox.seal`` (``action``) every secret stored in plain text (``plain``), or ``open`` every encrypted one."""
    conn = op.get_bind()
    hooks = sa.table("webhooks", sa.column("id", sa.BigInteger), sa.column("secret", sa.String))
    starts_plain = hooks.c.secret.like(_PLAIN_PREFIX + "%")
    rows = conn.execute(sa.select(hooks.c.id, hooks.c.secret).where(starts_plain if plain else ~starts_plain)).all()
    if not rows:
        return
    change = getattr(_box(), action)
    for hook_id, secret in rows:
        conn.execute(sa.update(hooks).where(hooks.c.id == hook_id).values(secret=change(secret)))


def upgrade() -> None:
    _rewrite(True, "seal")


def downgrade() -> None:
    _rewrite(False, "open")
