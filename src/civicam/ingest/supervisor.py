"""One thread per camera: record, reconnect with exponential backoff and jitter, report health and gaps."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

import av

from civicam.config.recording import RecordingSettings
from civicam.domain.segments import SegmentDone
from civicam.domain.urls import redact
from civicam.ingest.handover import Handover
from civicam.ingest.native import record_native
from civicam.ingest.recorder import record_session
from civicam.ingest.resume import ResumeProbe, address_of, port_open, recently_recording
from civicam.ingest.sources import SourceError, SourceSpec
from civicam.storage.backend import SegmentStore

ONLINE, RECONNECTING, OFFLINE, STARTING, STOPPED = "online", "reconnecting", "offline", "starting", "stopped"
# A handover's first segment this close to the old one's end continues it (microsecond rounding of times).
HANDOVER_SLACK = timedelta(milliseconds=1)


@dataclass(frozen=True)
class CameraHealth:
    """A snapshot of one camera's recorder, safe to show (errors are redacted)."""

    camera_id: int
    state: str
    since: datetime
    bytes: int = 0
    segments: int = 0
    reconnects: int = 0
    last_error: str | None = None
    disk_paused: bool = False
    last_segment_end: datetime | None = None


class IndexSink(Protocol):
    """Where supervisors report published segments and the gaps between them."""

    def segment(self, done: SegmentDone) -> None: ...
    def gap(self, camera_id: int, start: datetime, reason: str, detail: str) -> None: ...


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so many cameras do not reconnect in step."""
    cap = min(high, low * (2 ** min(attempt, 30)))
    return float(cap / 2 + rng.uniform(0, cap / 2))


class Supervisor:
    """Keeps one camera recording until stopped; a failure here never touches another camera."""

    def __init__(
        self,
        spec: SourceSpec,
        store: SegmentStore,
        settings: RecordingSettings,
        sink: IndexSink,
        *,
        clock: Callable[[], datetime],
        logger: logging.Logger,
        space_ok: Callable[[], bool],
        last_segment_end: datetime | None = None,
        rng: random.Random | None = None,
        handover: Handover | None = None,
    ) -> None:
        self.spec = spec
        self._store = store
        self._settings = settings
        self._sink = sink
        self._clock = clock
        self._log = logger
        self._space_ok = space_ok
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._health = CameraHealth(spec.camera_id, STARTING, clock(), last_segment_end=last_segment_end)
        self._gap_open = False
        # Make-before-break: this recorder holds until the one it replaces has stopped (ingest/handover.py).
        self.handover = handover
        self._thread = threading.Thread(target=self._run, name=f"rec-{spec.camera_id}", daemon=True)

    # -- health ---------------------------------------------------------------------------------------

    def health(self) -> CameraHealth:
        with self._lock:
            h = self._health
        if h.state == RECONNECTING and (self._clock() - h.since).total_seconds() > self._settings.offline_after_s:
            return replace(h, state=OFFLINE)
        return h

    def _update(self, **changes: object) -> None:
        with self._lock:
            state = changes.get("state")
            if state is not None and state != self._health.state:
                changes["since"] = self._clock()
            self._health = replace(self._health, **changes)  # type: ignore[arg-type]

    # -- session events (called on this camera's thread) -----------------------------------------------

    def connected(self) -> None:
        self._update(state=ONLINE, last_error=None)

    def segment(self, done: SegmentDone) -> None:
        handover = self.handover
        if handover is not None and handover.released:
            self.handover = None
            since = handover.since
            if since is not None and done.start - since > HANDOVER_SLACK:
                # The keyframe the old recorder stopped on was no longer held: what lies between is lost.
                self._sink.gap(self.spec.camera_id, since, "handover",
                               f"the new recorder started {(done.start - since).total_seconds():.2f} s later")
        self._sink.segment(done)
        self._gap_open = False
        with self._lock:
            h = self._health
            self._health = replace(h, bytes=h.bytes + done.bytes, segments=h.segments + 1,
                                   last_segment_end=done.end)

    def paused(self, at: datetime, detail: str) -> None:
        self._log.warning("camera %s: recording paused: %s", self.spec.camera_id, detail)
        self._open_gap("disk_full", detail, at)
        self._update(disk_paused=True)

    def resumed(self) -> None:
        self._log.info("camera %s: recording resumed", self.spec.camera_id)
        self._update(disk_paused=False)

    def _open_gap(self, reason: str, detail: str, fallback: datetime) -> None:
        if self._gap_open:
            return
        # The gap starts where the recording stops: the end of the last segment this camera published.
        start = self._health.last_segment_end or fallback
        self._sink.gap(self.spec.camera_id, start, reason, detail)
        self._gap_open = True

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish its segment and exit; ``join`` waits for it."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        attempt = 0
        if self._health.last_segment_end is not None and self.handover is None:
            # Recorded before (a restart of the hub or a crash): the time since is a gap of its own.
            self._open_gap("recorder_down", "the recorder was not running", self._clock())
        while not self._stop.is_set():
            segments_before = self._health.segments
            error: str | None = None
            # One supervisor for both engines: they share the session contract (events, stop, raise on loss).
            record = record_native if self._settings.engine == "native" else record_session
            try:
                record(self.spec, self._store, target_s=self._settings.segment_target_s,
                       part_s=self._settings.part_target_s, clock=self._clock, stop=self._stop, events=self,
                       space_ok=self._space_ok, hold=self.handover)
            except SourceError as exc:
                error = str(exc)
            except (av.FFmpegError, OSError, ValueError, RuntimeError) as exc:
                error = redact(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001  a bug for one camera must not kill the recorder thread
                error = redact(f"unexpected {type(exc).__name__}: {exc}")
                self._log.exception("camera %s: recorder error", self.spec.camera_id)
            if self._stop.is_set():
                break
            handover = self.handover
            if handover is not None and handover.released:
                # Released, but lost before its first segment: the gap starts where the old recorder stopped.
                self.handover = None
                if handover.since is not None:
                    self._update(last_segment_end=handover.since)
            if self._health.segments > segments_before:
                attempt = 0
            self._open_gap("stream_lost", error or "the stream ended", self._clock())
            with self._lock:
                reconnects = self._health.reconnects + 1
            self._update(state=RECONNECTING, last_error=error or "the stream ended", reconnects=reconnects,
                         disk_paused=False)
            delay = backoff_delay(attempt, self._settings.backoff_min_s, self._settings.backoff_max_s, self._rng)
            self._log.info("camera %s: reconnecting in %.1fs (%s)", self.spec.camera_id, delay,
                           error or "stream ended")
            attempt += 1
            self._back_off(delay)
        self._update(state=STOPPED)

    def _back_off(self, delay: float) -> None:
        """Wait ``delay`` (or until stopped); cut short when a camera that just dropped answers again."""
        settings = self._settings
        address = address_of(self.spec.url)
        last = self._health.last_segment_end
        since = (self._clock() - last).total_seconds() if last is not None else None
        if address is None or not recently_recording(since, settings.resume_window_s):
            self._stop.wait(delay)
            return
        probe = ResumeProbe()
        deadline = time.monotonic() + delay
        while not self._stop.is_set():
            began = time.monotonic()
            if began >= deadline:
                return
            if probe.observe(port_open(address, min(settings.resume_probe_s, deadline - began))):
                self._log.info("camera %s: answers again; reconnecting now", self.spec.camera_id)
                return
            self._stop.wait(max(0.0, min(deadline, began + settings.resume_probe_s) - time.monotonic()))
