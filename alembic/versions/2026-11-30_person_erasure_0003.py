"""people.erased_at: a person erased on request stays as a row without identity, for the fairness counts

Revision ID: 0003_person_erasure
Revises: 0002_workspace
Create Date: 2026-11-30 10:05:00
"""
from alembic import op
import sqlalchemy as sa
import assistant.db.base


revision = '0003_person_erasure'
down_revision = '0002_workspace'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', assistant.db.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
