"""Imports every module that defines tables, so metadata is complete for Alembic and tests."""

from civicam.analytics import records as analytics_records  # noqa: F401
from civicam.db import models  # noqa: F401
from civicam.storage import models as recording_models  # noqa: F401
