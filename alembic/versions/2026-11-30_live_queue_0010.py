"""Live queue (issue 11): the brand's latest turn change by an index, read every second by each open queue page

Revision ID: 0010_live_queue
Revises: 0009_webhook_secrets_encrypted
Create Date: 2026-11-30
"""
from alembic import op


revision = '0010_live_queue'
down_revision = '0009_webhook_secrets_encrypted'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_turns_brand_updated', 'turns', ['brand_id', 'updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_turns_brand_updated', table_name='turns')
