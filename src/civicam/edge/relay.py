"""The gateway's side of view-only relays: pull a view-only camera at the site only while the hub wants it.

The hub never connects into a site, so it cannot ask for a stream; the gateway asks instead. One thread
long-polls ``GET /api/edge/relay-requests`` (site token, pinned TLS, like every call): the answer lists the
site's view-only cameras somebody watches on the hub. For each one wanted the gateway runs the same
recorder supervisor as for recorded cameras, into a scratch folder (``<spool>/relay/``, never the spool:
nothing of it is uploaded as a recording), and pushes every finished segment to
``POST /api/edge/relay/{camera}/segments``, then deletes it. A camera no longer listed (the hub reaps a
relay seconds after its last viewer) or a push answered ``409 not_wanted`` stops the pull; so does losing
the hub (nobody can watch then). Segments are live video: one the hub could not take is dropped, not
retried, and at most a few wait while the link is slow.
"""

from __future__ import annotations

import logging
import queue
import random
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from civicam.config.recording import RecordingSettings
from civicam.domain.segments import SegmentDone
from civicam.domain.urls import redact
from civicam.edge.client import HubClient, HubRefused, HubUnreachable, NotWanted, PinMismatch
from civicam.edge.config import EdgeCamera
from civicam.ingest.sources import SourceSpec
from civicam.ingest.supervisor import Supervisor, backoff_delay
from civicam.storage.backend import LocalDiskStore

QUEUED = 3  # finished segments waiting to be pushed; beyond it the oldest is dropped (live view wants the newest)


@dataclass(frozen=True)
class Offered:
    """A view-only camera the hub accepted, with what pulling it needs (kept at the site)."""

    hub_id: int
    local_id: int
    camera: EdgeCamera


class Pull:
    """One view-only camera pulled for the hub's viewers: a recorder into scratch files, and a pusher thread."""

    def __init__(self, offered: Offered, root: Path, settings: RecordingSettings, client: HubClient,
                 logger: logging.Logger, clock: Callable[[], datetime], connect_timeout_s: float) -> None:
        self.hub_id = offered.hub_id
        self.root = root
        self._client = client
        self._log = logger
        shutil.rmtree(root, ignore_errors=True)
        self.store = LocalDiskStore(root)
        self._queue: queue.Queue[SegmentDone] = queue.Queue()
        self._stopped = threading.Event()
        self.not_wanted = threading.Event()
        self.pushed = 0
        cam = offered.camera
        spec = SourceSpec(offered.local_id, cam.url, cam.username, cam.secret(), "tcp", connect_timeout_s)
        self._sup = Supervisor(spec, self.store, settings, self, clock=clock, logger=logger, space_ok=lambda: True)
        self._pusher = threading.Thread(target=self._push_loop, name=f"edge-relay-{offered.hub_id}", daemon=True)
        self._sup.start()
        self._pusher.start()

    # -- what the supervisor reports ------------------------------------------------------------------

    def segment(self, done: SegmentDone) -> None:
        self._queue.put(done)
        while self._queue.qsize() > QUEUED:
            try:
                old = self._queue.get_nowait()
            except queue.Empty:
                break
            self.store.delete(old.path)

    def gap(self, camera_id: int, start: datetime, reason: str, detail: str) -> None:
        pass  # nothing is recorded, so there is no gap to report

    # -- pushing --------------------------------------------------------------------------------------

    def _push_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                done = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if not self.not_wanted.is_set():
                    self._client.push_relay(self.hub_id, self.store.local_path(done.path), done.start)
                    self.pushed += 1
            except NotWanted:
                self._log.info("camera %s: the hub no longer wants the relay; stopping", self.hub_id)
                self.not_wanted.set()
            except (HubUnreachable, HubRefused, PinMismatch, OSError) as exc:
                self._log.warning("camera %s: relayed segment dropped: %s", self.hub_id, redact(str(exc)))
            finally:
                self.store.delete(done.path)

    def stop(self) -> None:
        self._stopped.set()
        self._sup.stop()
        self._sup.join(30)
        self._pusher.join(30)
        shutil.rmtree(self.root, ignore_errors=True)


class RelayLink:
    """Offered view-only cameras, the pulls running now, and the long poll that starts and stops them."""

    def __init__(self, client: HubClient, root: Path, settings: RecordingSettings, logger: logging.Logger,
                 clock: Callable[[], datetime], stop: threading.Event, connect_timeout_s: float,
                 backoff_min_s: float, backoff_max_s: float) -> None:
        self._client = client
        self.root = root
        self._settings = settings
        self._log = logger
        self._clock = clock
        self._stop = stop
        self._connect_timeout_s = connect_timeout_s
        self._backoff = (backoff_min_s, backoff_max_s)
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._offered: dict[int, Offered] = {}
        self._pulls: dict[int, Pull] = {}
        self._changed = threading.Condition()
        shutil.rmtree(root, ignore_errors=True)  # a crashed run's scratch files

    def offer(self, offered: Offered) -> None:
        """A view-only camera the hub registered: from now on the long poll may ask for it."""
        with self._lock:
            self._offered[offered.hub_id] = offered
        with self._changed:
            self._changed.notify_all()

    def relaying(self) -> list[int]:
        with self._lock:
            return sorted(self._pulls)

    def run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            with self._lock:
                offered = bool(self._offered)
            if not offered:
                with self._changed:
                    self._changed.wait(1.0)
                continue
            self._reap_unwanted()
            try:
                wanted = self._client.relay_requests(self.relaying())
                attempt = 0
            except (HubUnreachable, PinMismatch, HubRefused, OSError, ValueError) as exc:
                self._log.info("relay requests not received: %s", redact(str(exc)))
                self._stop_all()  # without the hub nobody can watch
                self._stop.wait(backoff_delay(attempt, *self._backoff, self._rng))
                attempt += 1
                continue
            self._apply(set(wanted))

    def _apply(self, wanted: set[int]) -> None:
        with self._lock:
            starting = [self._offered[h] for h in sorted(wanted) if h in self._offered and h not in self._pulls]
            stopping = [self._pulls.pop(h) for h in sorted(self._pulls) if h not in wanted]
        for pull in stopping:
            pull.stop()
            self._log.info("camera %s: relay stopped (no viewer on the hub)", pull.hub_id)
        for offered in starting:
            if self._stop.is_set():
                return
            try:
                pull = Pull(offered, self.root / f"cam{offered.local_id}", self._settings, self._client, self._log,
                            self._clock, self._connect_timeout_s)
            except ValueError as exc:  # a camera password variable gone: say so, try again next answer
                self._log.error("camera %s: cannot relay: %s", offered.hub_id, exc)
                continue
            with self._lock:
                self._pulls[offered.hub_id] = pull
            self._log.info("camera %s: relay started (watched on the hub)", offered.hub_id)

    def _reap_unwanted(self) -> None:
        with self._lock:
            done = [self._pulls.pop(h) for h, p in list(self._pulls.items()) if p.not_wanted.is_set()]
        for pull in done:
            pull.stop()
            self._log.info("camera %s: relay stopped (the hub no longer wants it)", pull.hub_id)

    def _stop_all(self) -> None:
        with self._lock:
            pulls = list(self._pulls.values())
            self._pulls.clear()
        for pull in pulls:
            pull.stop()

    def close(self) -> None:
        with self._changed:
            self._changed.notify_all()
        self._stop_all()
        self._client.close()
        shutil.rmtree(self.root, ignore_errors=True)
