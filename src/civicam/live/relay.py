"""Live relay of view-only cameras: pulled only while somebody watches, never recorded or indexed.

A view-only camera is probed and admitted like any other but the recorder leaves it alone. When an operator
opens its live view the hub starts a relay, writing into a scratch store of its own (``<data_dir>/relay``,
not the recordings) and keeping only the newest few segments, in memory as transient index rows. Every
playlist or segment request marks the view watched; once nobody has asked for ``idle_s`` the relay stops
and its files are deleted.

Two kinds fill a relay's window. A camera the hub reaches itself is pulled by the recorder supervisor
(``Relay``). A camera behind a site gateway cannot be reached (the hub never connects into a site): its
relay (``EdgeRelay``) is only a *want* that the gateway learns of by long-polling the hub over its own
outbound connection; the gateway then pulls the camera at the site and pushes finished segments up, which
land here, bounded in size and rate. When the relay is reaped the gateway is told (its long poll answers
without the camera, and a push is refused as not wanted) and stops pulling.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from civicam.config.recording import RecordingSettings
from civicam.domain.rates import TokenBucket
from civicam.domain.segments import SegmentDone, segment_path
from civicam.ingest.sources import SourceSpec
from civicam.ingest.supervisor import Supervisor
from civicam.live.privacy import BlurredCache
from civicam.storage.backend import LocalDiskStore
from civicam.storage.media import probe
from civicam.storage.models import Segment

# Bounds of what a gateway may push for one relayed camera: a segment of a few seconds at a camera's
# bitrate is well under a few MiB; the rates allow a 16 Mbit/s camera with 0.5 s segments and no more.
MAX_PUSH_BYTES = 16 * 1024 * 1024
PUSH_BYTES_PER_S = 2 * 1024 * 1024
PUSH_BYTES_BURST = 3 * MAX_PUSH_BYTES
PUSHES_PER_S = 2.0
PUSHES_BURST = 6.0
MAX_PUSH_DURATION_S = 60.0
RELAY_CODECS = ("h264", "hevc")  # what the onboarding policy admits and the blur pipeline decodes


class RelayRefused(Exception):
    """A pushed segment the hub does not take: ``code`` a stable word, the message says why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RelayWindow:
    """The newest few segments of one relayed camera, in a scratch store, as transient index rows."""

    def __init__(self, camera_id: int, root: Path, window: int) -> None:
        self.camera_id = camera_id
        self.root = root
        shutil.rmtree(root, ignore_errors=True)  # leftovers of a relay a crash did not clean up
        self.store = LocalDiskStore(root / "segments")
        self.cache = BlurredCache(root / "blurred", self.store)
        self._lock = threading.RLock()
        self._segments: deque[Segment] = deque()
        self._window = window
        self._seq = 0
        self.last_seen = time.monotonic()
        self.started = datetime.now()

    def segment(self, done: SegmentDone) -> None:
        with self._lock:
            seg = Segment(id=self._seq, seq=self._seq, camera_id=self.camera_id, start=done.start, end=done.end,
                          path=done.path, bytes=done.bytes, keyframes=done.keyframes, frames=done.frames,
                          init_bytes=done.init_bytes, codec=done.codec, width=done.width, height=done.height,
                          session=done.session)
            self._seq += 1
            self._segments.append(seg)
            # Two beyond the playlist's window, so a player fetching the oldest listed one still finds it.
            while len(self._segments) > self._window + 2:
                old = self._segments.popleft()
                self.store.delete(old.path)
                self.cache.path(old).unlink(missing_ok=True)

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
        return True

    def stop(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Relay(RelayWindow):
    """One view-only camera the hub pulls itself for its viewers."""

    def __init__(self, spec: SourceSpec, settings: RecordingSettings, root: Path, logger: logging.Logger,
                 clock: Callable[[], datetime], window: int) -> None:
        super().__init__(spec.camera_id, root, window)
        self._sup = Supervisor(spec, self.store, settings, self, clock=clock, logger=logger, space_ok=lambda: True)
        self._sup.start()

    def gap(self, camera_id: int, start: datetime, reason: str, detail: str) -> None:
        pass  # nothing is recorded, so there is no gap to index

    def running(self) -> bool:
        return self._sup.is_alive()

    def stop(self) -> None:
        self._sup.stop()
        self._sup.join(15)
        super().stop()


class EdgeRelay(RelayWindow):
    """One view-only camera behind a site gateway: wanted while watched; its segments are pushed by the gateway.

    What arrives is checked here, not trusted: it must fit the size and rate bounds, demux as video, and
    follow the previous segment; its index fields come from the hub's own probe of the bytes.
    """

    def __init__(self, camera_id: int, root: Path, window: int) -> None:
        super().__init__(camera_id, root, window)
        self.incoming = root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self._bytes = TokenBucket(PUSH_BYTES_PER_S, PUSH_BYTES_BURST)
        self._count = TokenBucket(PUSHES_PER_S, PUSHES_BURST)
        self._last_end: datetime | None = None
        self._stopped = False
        self.pushed = 0

    def admit(self, size: int, now: float | None = None) -> None:
        """Whether a push of ``size`` bytes may come in now; RelayRefused (413, 429) if not."""
        if not 0 < size <= MAX_PUSH_BYTES:
            raise RelayRefused(413, "too_large", f"A relayed segment is 1 to {MAX_PUSH_BYTES} bytes; this one "
                               f"announces {size}.")
        t = time.monotonic() if now is None else now
        with self._lock:
            if self._count.wait_s(1, t) > 0 or self._bytes.wait_s(size, t) > 0:
                raise RelayRefused(429, "rate", "Relayed segments arrive faster than a camera's live view needs; "
                                   "slow down.")
            self._count.take(1, t)
            self._bytes.take(size, t)

    def receive(self, tmp: Path, start: datetime) -> Segment:
        """Check the pushed file ``tmp`` (in ``incoming``) and put it in the window; it is consumed either way."""
        try:
            if start.tzinfo is None:
                raise RelayRefused(400, "bad_start", "The segment's start must be an aware time.")
            try:
                info = probe(str(tmp))
            except Exception as exc:  # noqa: BLE001  any demuxer failure: not a segment we can serve
                raise RelayRefused(400, "bad_segment", f"The pushed bytes are no fMP4 video: {exc}") from None
            if info.frames == 0 or info.init_bytes == 0 or not 0 < info.duration_s <= MAX_PUSH_DURATION_S:
                raise RelayRefused(400, "bad_segment", "The pushed segment has no frames, no init section or an "
                                   "implausible duration.")
            if info.codec not in RELAY_CODECS:
                raise RelayRefused(400, "bad_segment", f"The pushed segment is {info.codec}, not H.264 or HEVC.")
            rel = segment_path(self.camera_id, start)
            end = start + timedelta(seconds=info.duration_s)
            # One lock for the checks and the move: two pushes with one start cannot both land (same file),
            # and nothing lands in a relay ``stop`` is deleting.
            with self._lock:
                if self._stopped:
                    raise RelayRefused(409, "not_wanted", "Nobody watches this camera any more; stop relaying it.")
                if self._last_end is not None and start < self._last_end - timedelta(milliseconds=1):
                    raise RelayRefused(409, "out_of_order", "This segment starts before the previous one ended.")
                size = os.stat(tmp).st_size
                self.store.spool(rel)
                os.replace(tmp, self.store.local_path(rel))
                self._last_end = end
                self.pushed += 1
                self.segment(SegmentDone(self.camera_id, rel, start, end, size, info.frames, info.keyframes,
                                         info.init_bytes, info.codec, info.width, info.height, "edge-relay"))
                return self._segments[-1]
        finally:
            tmp.unlink(missing_ok=True)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        super().stop()


class RelayService:
    """The hub's relays, one per watched view-only camera, and the reaper that stops unwatched ones."""

    def __init__(self, root: Path, settings: RecordingSettings, logger: logging.Logger,
                 clock: Callable[[], datetime], idle_s: float = 8.0) -> None:
        self.root = root
        self.settings = settings
        self.idle_s = idle_s
        self._log = logger
        self._clock = clock
        self._relays: dict[int, RelayWindow] = {}
        self._lock = threading.Lock()
        # Cameras whose relay the reaper is stopping (its scratch folder being deleted): a new relay of the
        # same camera waits for that, or the old one's deletion would take the new one's files.
        self._stopping: set[int] = set()
        self._stopped = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="relay-reaper", daemon=True)
        self._reaper.start()

    def watch(self, spec: SourceSpec) -> RelayWindow:
        """The camera's relay, started if it is not running; marks it watched."""
        with self._lock:
            self._wait_stopped(spec.camera_id)
            relay = self._relays.get(spec.camera_id)
            if relay is None:
                relay = Relay(spec, self.settings, self.root / f"cam{spec.camera_id}", self._log, self._clock,
                              self.settings.live_segments)
                self._relays[spec.camera_id] = relay
                self._log.info("camera %s: view-only relay started", spec.camera_id)
        relay.touch()
        return relay

    def want(self, camera_id: int) -> RelayWindow:
        """The relay of a camera behind a gateway, made if none: the gateway's long poll now says it is wanted."""
        with self._lock:
            self._wait_stopped(camera_id)
            relay = self._relays.get(camera_id)
            if relay is None:
                relay = EdgeRelay(camera_id, self.root / f"cam{camera_id}", self.settings.live_segments)
                self._relays[camera_id] = relay
                self._log.info("camera %s: view-only relay through its gateway wanted", camera_id)
        relay.touch()
        return relay

    def pushed(self, camera_id: int) -> EdgeRelay | None:
        """The camera's gateway relay, if it is wanted; a push does not count as a viewer (no touch)."""
        with self._lock:
            relay = self._relays.get(camera_id)
        return relay if isinstance(relay, EdgeRelay) else None

    def wanted(self, camera_ids: Iterable[int]) -> list[int]:
        """Which of ``camera_ids`` have a gateway relay now (somebody watches them), or one still being stopped:
        "not wanted" is only said once the relay's scratch files are gone (pushes are refused meanwhile)."""
        ids = set(camera_ids)
        with self._lock:
            live = {cid for cid, r in self._relays.items() if isinstance(r, EdgeRelay)}
            return sorted((live | self._stopping) & ids)

    def get(self, camera_id: int) -> RelayWindow | None:
        with self._lock:
            relay = self._relays.get(camera_id)
        if relay is not None:
            relay.touch()
        return relay

    def active(self) -> list[int]:
        with self._lock:
            return sorted(self._relays)

    def _wait_stopped(self, camera_id: int) -> None:
        """(Holding the lock) until the camera's previous relay, if one is being stopped, is gone."""
        if not self._stopped.wait_for(lambda: camera_id not in self._stopping, timeout=30):
            raise RuntimeError(f"camera {camera_id}: the previous relay did not stop in 30 s")

    def _reap(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            with self._lock:
                idle = [cid for cid, r in self._relays.items() if now - r.last_seen > self.idle_s]
                stopping = [self._relays.pop(cid) for cid in idle]
                self._stopping.update(idle)
            for relay in stopping:
                try:
                    relay.stop()  # outside the lock: a pulled relay's stop joins its recorder (seconds)
                finally:
                    with self._lock:
                        self._stopping.discard(relay.camera_id)
                        self._stopped.notify_all()
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
