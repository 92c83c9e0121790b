"""Helpers for tests that run hub processes against shared storage: a hub on disk, accepted cameras, waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from civicam.config.settings import get_settings
from civicam.context import Context, open_context
from civicam.registry import service as registry
from support.hub import ACTOR
from support.rtsp import Mount

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


def file_mount(path: str, clip: Path) -> Mount:
    """A mount looping a pre-encoded Annex-B file: the server packetises, never transcodes."""
    return {"path": path, "source": "file", "file": str(clip), "fps": 25, "shared": True}


def new_context(data_dir: Path, database_url: str) -> Context:
    data_dir.mkdir(parents=True, exist_ok=True)
    return open_context(get_settings(data_dir=data_dir, database_url=database_url), create=True)


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
