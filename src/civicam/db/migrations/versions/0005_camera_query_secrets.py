"""cameras: credentials given as URL query parameters, encrypted apart from the URL

Revision ID: 0005_camera_query_secrets
Revises: 0004_segments_start_index
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_camera_query_secrets'
down_revision = '0004_segments_start_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('cameras', sa.Column('query_secrets_enc', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column('cameras', 'query_secrets_enc')
