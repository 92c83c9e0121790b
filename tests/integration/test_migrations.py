"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import civicam.db.tables  # noqa: F401  (every model registered on the metadata)
from civicam.context import Context
from civicam.db.base import Base
from civicam.storage.partitions import include_name


def test_migrations_match_the_models(ctx: Context) -> None:
    with ctx.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}), Base.metadata)
    assert diff == []
