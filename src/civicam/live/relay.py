"""Live relay of view-only cameras: pulled only while somebody watches, never recorded or indexed.

A view-only camera is probed and admitted like any other but the recorder leaves it alone. When an operator
opens its live view the hub starts a relay: the same recorder supervisor, writing into a scratch store of
its own (``<data_dir>/relay``, not the recordings) and keeping only the newest few segments, in memory as
transient index rows. Every playlist or segment request marks the view watched; once nobody has asked for
``idle_s`` the relay stops pulling and its files are deleted.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from civicam.config.recording import RecordingSettings
from civicam.domain.segments import SegmentDone
from civicam.ingest.sources import SourceSpec
from civicam.ingest.supervisor import Supervisor
from civicam.live.privacy import BlurredCache
from civicam.storage.backend import LocalDiskStore
from civicam.storage.models import Segment


class Relay:
    """One view-only camera being pulled for its viewers."""

    def __init__(self, spec: SourceSpec, settings: RecordingSettings, root: Path, logger: logging.Logger,
                 clock: Callable[[], datetime], window: int) -> None:
        self.camera_id = spec.camera_id
        self.root = root
        shutil.rmtree(root, ignore_errors=True)  # leftovers of a relay a crash did not clean up
        self.store = LocalDiskStore(root / "segments")
        self.cache = BlurredCache(root / "blurred", self.store)
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        self._window = window
        self._seq = 0
        self.last_seen = time.monotonic()
        self.started = datetime.now()
        self._sup = Supervisor(spec, self.store, settings, self, clock=clock, logger=logger, space_ok=lambda: True)
        self._sup.start()

    # -- what the supervisor reports ------------------------------------------------------------------

    def segment(self, done: SegmentDone) -> None:
        seg = Segment(id=self._seq, seq=self._seq, camera_id=done.camera_id, start=done.start, end=done.end,
                      path=done.path, bytes=done.bytes, keyframes=done.keyframes, frames=done.frames,
                      init_bytes=done.init_bytes, codec=done.codec, width=done.width, height=done.height,
                      session=done.session)
        self._seq += 1
        with self._lock:
            self._segments.append(seg)
            # Two beyond the playlist's window, so a player fetching the oldest listed one still finds it.
            while len(self._segments) > self._window + 2:
                old = self._segments.popleft()
                self.store.delete(old.path)
                self.cache.path(old).unlink(missing_ok=True)

    def gap(self, camera_id: int, start: datetime, reason: str, detail: str) -> None:
        pass  # nothing is recorded, so there is no gap to index

    # -- viewers --------------------------------------------------------------------------------------

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def window(self) -> list[Segment]:
        with self._lock:
            return list(self._segments)[-self._window:]

    def find(self, seq: int) -> Segment | None:
        with self._lock:
            return next((s for s in self._segments if s.seq == seq), None)

    def running(self) -> bool:
        return self._sup.is_alive()

    def stop(self) -> None:
        self._sup.stop()
        self._sup.join(15)
        shutil.rmtree(self.root, ignore_errors=True)


class RelayService:
    """The hub's relays, one per watched view-only camera, and the reaper that stops unwatched ones."""

    def __init__(self, root: Path, settings: RecordingSettings, logger: logging.Logger,
                 clock: Callable[[], datetime], idle_s: float = 8.0) -> None:
        self.root = root
        self.settings = settings
        self.idle_s = idle_s
        self._log = logger
        self._clock = clock
        self._relays: dict[int, Relay] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="relay-reaper", daemon=True)
        self._reaper.start()

    def watch(self, spec: SourceSpec) -> Relay:
        """The camera's relay, started if it is not running; marks it watched."""
        with self._lock:
            relay = self._relays.get(spec.camera_id)
            if relay is None:
                relay = Relay(spec, self.settings, self.root / f"cam{spec.camera_id}", self._log, self._clock,
                              self.settings.live_segments)
                self._relays[spec.camera_id] = relay
                self._log.info("camera %s: view-only relay started", spec.camera_id)
        relay.touch()
        return relay

    def get(self, camera_id: int) -> Relay | None:
        with self._lock:
            relay = self._relays.get(camera_id)
        if relay is not None:
            relay.touch()
        return relay

    def active(self) -> list[int]:
        with self._lock:
            return sorted(self._relays)

    def _reap(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            with self._lock:
                idle = [cid for cid, r in self._relays.items() if now - r.last_seen > self.idle_s]
                stopping = [self._relays.pop(cid) for cid in idle]
            for relay in stopping:
                relay.stop()
                self._log.info("camera %s: view-only relay stopped (no viewer for %.0fs)", relay.camera_id,
                               self.idle_s)

    def close(self) -> None:
        self._stop.set()
        self._reaper.join(5)
        with self._lock:
            relays = list(self._relays.values())
            self._relays.clear()
        for relay in relays:
            relay.stop()
