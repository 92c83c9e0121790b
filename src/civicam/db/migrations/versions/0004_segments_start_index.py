"""recording segments: an index on start, for the retention cleaner's oldest-first query

Revision ID: 0004_segments_start_index
Revises: 0003_analytics
Create Date: 2026-12-01 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0004_segments_start_index'
down_revision = '0003_analytics'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_recording_segments_start', 'recording_segments', ['start'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_recording_segments_start', table_name='recording_segments')
