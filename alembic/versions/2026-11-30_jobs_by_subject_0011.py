"""Jobs found by their subject (issue 14): a mention that joins a turn asks whether the turn's job is already
queued; with only ``ix_jobs_ready`` that read every queued job (45 ms per transaction with 135,000 queued, the
backlog of a model outage or of a benchmark without workers)

Revision ID: 0011_jobs_by_subject
Revises: 0010_live_queue
Create Date: 2026-11-30
"""
from alembic import op


revision = '0011_jobs_by_subject'
down_revision = '0010_live_queue'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_jobs_subject', 'jobs', ['subject_id', 'kind', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_jobs_subject', table_name='jobs')
