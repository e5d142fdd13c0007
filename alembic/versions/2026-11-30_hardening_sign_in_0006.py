"""Hardening (issue 13): sign-in throttles shared by every process, session versions, reviewer token expiry

Revision ID: 0006_hardening_sign_in
Revises: 0005_identity_clues
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
import assistant.db.base


revision = '0006_hardening_sign_in'
down_revision = '0005_identity_clues'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('throttles',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('since', assistant.db.base.UTCDateTime(), nullable=False),
    sa.Column('next_at', assistant.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_throttles'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('session_version', server_default=None)
    with op.batch_alter_table('user_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', assistant.db.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', assistant.db.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_column('session_version')
    op.drop_table('throttles')
