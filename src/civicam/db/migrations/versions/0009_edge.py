"""edge gateways: site tokens, view-only and gateway cameras, resumable segment uploads

Revision ID: 0009_edge
Revises: 0005_camera_query_secrets
Create Date: 2026-12-01 13:00:00

Gap events from a gateway (spool quota) are rows of recording_gaps with reason 'edge_quota'.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from civicam.db.base import UTCDateTime

revision = '0009_edge'
down_revision = '0008_segments_by_day'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('cameras', sa.Column('view_only', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('cameras', sa.Column('source', sa.String(length=8), nullable=False, server_default='pull'))
    op.create_table(
        'site_tokens',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('site_id', sa.Integer(), sa.ForeignKey('sites.id'), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_contact', UTCDateTime(timezone=True), nullable=True),
        sa.Column('health', sa.JSON(), nullable=True),
    )
    op.create_index('ix_site_tokens_site_id', 'site_tokens', ['site_id'])
    op.create_table(
        'edge_uploads',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('site_id', sa.Integer(), sa.ForeignKey('sites.id'), nullable=False),
        sa.Column('camera_id', sa.Integer(), sa.ForeignKey('cameras.id', ondelete='CASCADE'), nullable=False),
        sa.Column('start', UTCDateTime(timezone=True), nullable=False),
        sa.Column('end', UTCDateTime(timezone=True), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('length', sa.BigInteger(), nullable=False),
        sa.Column('meta', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('received_bytes', sa.BigInteger(), nullable=False),
        sa.Column('resumes', sa.Integer(), nullable=False),
        sa.Column('segment_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('completed_at', UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint('camera_id', 'start', name='uq_edge_uploads_camera_start'),
    )
    op.create_index('ix_edge_uploads_site_id', 'edge_uploads', ['site_id'])


def downgrade() -> None:
    op.drop_index('ix_edge_uploads_site_id', table_name='edge_uploads')
    op.drop_table('edge_uploads')
    op.drop_index('ix_site_tokens_site_id', table_name='site_tokens')
    op.drop_table('site_tokens')
    op.drop_column('cameras', 'source')
    op.drop_column('cameras', 'view_only')
