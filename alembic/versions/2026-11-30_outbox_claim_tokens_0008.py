"""replies.claim_token_hash: each outbox claim gets its own token, so only its holder may renew, confirm or fail it

Claims in flight during the upgrade have no token: their holders get 409 and the replies are handed out again
when their leases end.

Revision ID: 0008_outbox_claim_tokens
Revises: 0007_queue_search
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
import assistant.db.base


revision = '0008_outbox_claim_tokens'
down_revision = '0007_queue_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_column('claim_token_hash')
