"""Helpers for recording tests: condition waits, fast settings, a hub with accepted cameras."""

from __future__ import annotations

import logging
from pathlib import Path

from civicam.audit.log import Actor
from civicam.config.recording import RecordingSettings
from civicam.config.settings import get_settings
from civicam.context import Context, open_context

# Shared with the hub-process tests (tests/support sits below every test folder): one copy of each.
from support.cityhub import add_cameras, file_mount, wait_for
from support.hub import ACTOR

__all__ = ["ACTOR", "INVESTIGATOR", "LOG", "add_cameras", "fast_settings", "file_mount", "new_context", "wait_for"]

# An investigator allowed to see faces: exports by them, with a reason, are remuxed rather than blurred.
INVESTIGATOR = Actor(name="investigator", source="pytest", role="admin", view_unblurred=True)
LOG = logging.getLogger("civicam.recording.test")


def fast_settings(**overrides: object) -> RecordingSettings:
    """Short segments and quick reconnects so tests finish fast; no free-space reserve on shared disks."""
    base: dict[str, object] = dict(segment_target_s=2.0, min_free_bytes=0, refresh_interval_s=0.5, backoff_min_s=0.2,
                                   backoff_max_s=1.0, connect_timeout_s=3.0, cleaner_interval_s=0.5,
                                   offline_after_s=30)
    base.update(overrides)
    return RecordingSettings.model_validate(base)


def new_context(root: Path, database_url: str | None = None) -> Context:
    """A fresh hub (data directory, and a SQLite database unless ``database_url`` is given) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    settings = get_settings(data_dir=root / "data", database_url=database_url or f"sqlite:///{root / 'civicam.db'}")
    return open_context(settings, create=True)

