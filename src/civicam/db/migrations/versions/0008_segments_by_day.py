"""recording segments at city scale: on PostgreSQL, one partition per UTC day and 64-bit ids

Revision ID: 0008_segments_by_day
Revises: 0005_camera_query_secrets
Create Date: 2026-12-01 13:00:00

200,000 cameras publishing a segment every 4-10 s write 1.7-4.3 billion index rows a day: retention by
DELETE would be a second write load as large as the first (and its vacuum), while dropping a day's
partition is one catalogue change; a playback query for one camera and interval touches only the days
it spans (docs/benchmarks.md "Index at scale"). A 32-bit id would run out within a day, so ids are 64-bit.

PostgreSQL requires the partition key in every unique constraint, so the primary key is (id, start) and
the path is unique together with its start (the path encodes the start, so nothing changes in practice).
SQLite, the embedded default, keeps one table; only its path constraint changes with the model.
Day partitions are made ahead by civicam.storage.partitions (the writer makes the days it writes to);
rows of a day without one land in the default partition, so an insert never fails for want of a day.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0008_segments_by_day'
down_revision = '0005_camera_query_secrets'
branch_labels = None
depends_on = None

_COLUMNS = """
    id BIGINT NOT NULL DEFAULT nextval('recording_segments_id_seq'),
    camera_id INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    start TIMESTAMP WITH TIME ZONE NOT NULL,
    "end" TIMESTAMP WITH TIME ZONE NOT NULL,
    path VARCHAR(200) NOT NULL,
    bytes BIGINT NOT NULL,
    keyframes INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    init_bytes INTEGER NOT NULL,
    codec VARCHAR(32) NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    session VARCHAR(32) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT fk_recording_segments_camera_id_cameras FOREIGN KEY (camera_id) REFERENCES cameras (id)
        ON DELETE CASCADE
"""


def _day_partition(day: date) -> str:
    # Same naming and bounds as civicam.storage.partitions (kept inline: a migration must not change
    # when the code it was written against does).
    nxt = day + timedelta(days=1)
    return (f'CREATE TABLE IF NOT EXISTS recording_segments_p{day:%Y%m%d} PARTITION OF recording_segments '
            f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') TO ('{nxt.isoformat()} 00:00:00+00')")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        with op.batch_alter_table('recording_segments', schema=None) as batch_op:
            batch_op.drop_constraint('uq_recording_segments_path', type_='unique')
            batch_op.create_unique_constraint('uq_recording_segments_path', ['path', 'start'])
        return
    op.execute('ALTER TABLE recording_segments RENAME TO recording_segments_old')
    op.execute('ALTER TABLE recording_segments_old RENAME CONSTRAINT pk_recording_segments TO pk_recording_segments_old')
    op.execute('ALTER TABLE recording_segments_old RENAME CONSTRAINT uq_recording_segments_path TO uq_recording_segments_path_old')
    op.execute('ALTER TABLE recording_segments_old RENAME CONSTRAINT fk_recording_segments_camera_id_cameras TO fk_recording_segments_old_camera_id')
    op.execute('ALTER INDEX ix_recording_segments_camera_start RENAME TO ix_recording_segments_old_camera_start')
    op.execute('ALTER INDEX ix_recording_segments_start RENAME TO ix_recording_segments_old_start')
    op.execute('ALTER SEQUENCE recording_segments_id_seq OWNED BY NONE')
    op.execute('ALTER SEQUENCE recording_segments_id_seq AS BIGINT')
    op.execute(f"""CREATE TABLE recording_segments ({_COLUMNS},
        CONSTRAINT pk_recording_segments PRIMARY KEY (id, start),
        CONSTRAINT uq_recording_segments_path UNIQUE (path, start)
    ) PARTITION BY RANGE (start)""")
    op.execute('ALTER SEQUENCE recording_segments_id_seq OWNED BY recording_segments.id')
    op.execute('CREATE INDEX ix_recording_segments_camera_start ON recording_segments (camera_id, start)')
    op.execute('CREATE INDEX ix_recording_segments_start ON recording_segments (start)')
    op.execute('CREATE TABLE recording_segments_default PARTITION OF recording_segments DEFAULT')
    days = bind.execute(sa.text(
        "SELECT DISTINCT (start AT TIME ZONE 'UTC')::date FROM recording_segments_old")).scalars().all()
    for day in days:
        op.execute(_day_partition(day))
    op.execute('INSERT INTO recording_segments SELECT * FROM recording_segments_old')
    op.execute('DROP TABLE recording_segments_old')


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        with op.batch_alter_table('recording_segments', schema=None) as batch_op:
            batch_op.drop_constraint('uq_recording_segments_path', type_='unique')
            batch_op.create_unique_constraint('uq_recording_segments_path', ['path'])
        return
    op.execute('ALTER TABLE recording_segments RENAME TO recording_segments_by_day')
    op.execute('ALTER TABLE recording_segments_by_day RENAME CONSTRAINT pk_recording_segments TO pk_recording_segments_by_day')
    op.execute('ALTER TABLE recording_segments_by_day RENAME CONSTRAINT uq_recording_segments_path TO uq_recording_segments_path_by_day')
    op.execute('ALTER TABLE recording_segments_by_day RENAME CONSTRAINT fk_recording_segments_camera_id_cameras TO fk_recording_segments_by_day_camera_id')
    op.execute('ALTER INDEX ix_recording_segments_camera_start RENAME TO ix_recording_segments_by_day_camera_start')
    op.execute('ALTER INDEX ix_recording_segments_start RENAME TO ix_recording_segments_by_day_start')
    op.execute('ALTER SEQUENCE recording_segments_id_seq OWNED BY NONE')
    op.execute(f"""CREATE TABLE recording_segments ({_COLUMNS},
        CONSTRAINT pk_recording_segments PRIMARY KEY (id),
        CONSTRAINT uq_recording_segments_path UNIQUE (path)
    )""")
    op.execute('ALTER SEQUENCE recording_segments_id_seq OWNED BY recording_segments.id')
    op.execute('CREATE INDEX ix_recording_segments_camera_start ON recording_segments (camera_id, start)')
    op.execute('CREATE INDEX ix_recording_segments_start ON recording_segments (start)')
    op.execute('INSERT INTO recording_segments SELECT * FROM recording_segments_by_day')
    op.execute('DROP TABLE recording_segments_by_day')
