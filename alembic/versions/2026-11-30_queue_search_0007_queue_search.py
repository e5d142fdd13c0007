"""Queue search (issue 11): a handle found on any platform, and the queue of one platform, each by an index

Revision ID: 0007_queue_search
Revises: 0006_hardening_sign_in
Create Date: 2026-11-30
"""
from alembic import op


revision = '0007_queue_search'
down_revision = '0006_hardening_sign_in'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_handles_brand_handle', 'handles', ['brand_id', 'handle'], unique=False)
    op.create_index('ix_turns_queue_platform', 'turns', ['brand_id', 'status', 'platform', 'waiting_since', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_turns_queue_platform', table_name='turns')
    op.drop_index('ix_handles_brand_handle', table_name='handles')
