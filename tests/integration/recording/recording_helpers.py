"""Helpers for recording tests: condition waits, fast settings, a hub with accepted cameras."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from civicam.audit.log import Actor
from civicam.config.recording import RecordingSettings
from civicam.config.settings import get_settings
from civicam.context import Context, open_context
from civicam.registry import service as registry
from support.rtsp import Mount

ACTOR = Actor(name="test", source="pytest", role="admin")
# An investigator allowed to see faces: exports by them, with a reason, are remuxed rather than blurred.
INVESTIGATOR = Actor(name="investigator", source="pytest", role="admin", view_unblurred=True)
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
        time.sleep(every)  # the polling interval; the condition above is what synchronises


def fast_settings(**overrides: object) -> RecordingSettings:
    """Short segments and quick reconnects so tests finish fast; no free-space reserve on shared disks."""
    base: dict[str, object] = dict(segment_target_s=2.0, min_free_bytes=0, refresh_interval_s=0.5, backoff_min_s=0.2,
                                   backoff_max_s=1.0, connect_timeout_s=3.0, cleaner_interval_s=0.5,
                                   offline_after_s=30)
    base.update(overrides)
    return RecordingSettings.model_validate(base)


def file_mount(path: str, clip: Path) -> Mount:
    """A mount looping a pre-encoded Annex-B file: the server packetises, never transcodes."""
    return {"path": path, "source": "file", "file": str(clip), "fps": 25, "shared": True}


def new_context(root: Path, database_url: str | None = None) -> Context:
    """A fresh hub (data directory, and a SQLite database unless ``database_url`` is given) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    settings = get_settings(data_dir=root / "data", database_url=database_url or f"sqlite:///{root / 'civicam.db'}")
    return open_context(settings, create=True)


def add_cameras(ctx: Context, urls: list[str]) -> list[int]:
    """Register cameras at one site and mark them accepted, as a passed probe would."""
    with ctx.db.session() as s:
        region = registry.add_region(s, ACTOR, f"region-{time.monotonic_ns()}")
        site = registry.add_site(s, ACTOR, region, "site", "Contact", "contact@example.org")
        ids = []
        for n, url in enumerate(urls):
            cam = registry.add_camera(s, ACTOR, ctx.secrets, site.id, f"cam{n}", url)
            cam.status = "accepted"
            s.flush()
            ids.append(cam.id)
    return ids
