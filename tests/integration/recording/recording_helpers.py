"""Helpers for recording tests: condition waits, fast settings, a hub with accepted cameras."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from civicam.audit.log import Actor
from civicam.config.recording import RecordingSettings
from support.rtsp import Mount

ACTOR = Actor(name="test", source="pytest", role="admin")
LOG = logging.getLogger("civicam.recording.test")
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)  # polling interval, not synchronisation: the condition above decides


def fast_settings(**overrides: object) -> RecordingSettings:
    """Short segments and quick reconnects so tests finish fast; no free-space reserve on shared disks."""
    base: dict[str, object] = dict(segment_target_s=2.0, min_free_bytes=0, refresh_interval_s=0.5, backoff_min_s=0.2,
                                   backoff_max_s=1.0, connect_timeout_s=3.0, cleaner_interval_s=0.5,
                                   offline_after_s=30)
    base.update(overrides)
    return RecordingSettings.model_validate(base)


def file_mount(path: str, clip: Path) -> Mount:
    return {"path": path, "source": "file", "file": str(clip), "fps": 25, "shared": True}


