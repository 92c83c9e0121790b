"""The site gateway: probe local cameras, record accepted ones into the spool, upload to the hub, report health.

One thread per camera (probe, then its upload lane: registration, gap events, segments in order with the
live one first), the hub's own recorder supervisors writing the spool, a health thread, and the relay link
(edge/relay.py) that pulls view-only cameras only while the hub says somebody watches them.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from civicam.config.recording import RecordingSettings
from civicam.db.base import utcnow
from civicam.domain.segments import SegmentDone
from civicam.domain.urls import redact
from civicam.edge.client import DigestMismatch, HubClient, HubRefused, HubUnreachable, PinMismatch
from civicam.edge.config import EdgeCamera, EdgeConfig
from civicam.edge.relay import Offered, RelayLink
from civicam.edge.spool import Spool, Spooled, sha256_file
from civicam.edge.stream import LiveStreamer
from civicam.ingest.sources import SourceSpec
from civicam.ingest.supervisor import Supervisor, backoff_delay
from civicam.registry.probe import ProbeResult, probe_stream


def choose_next(pending: list[Spooled], now: datetime, target_s: float) -> Spooled:
    """Which of a camera's waiting segments goes next: the live one if there is one, else the oldest.

    After an outage this brings live view back at once while the backlog follows in order.
    """
    newest = pending[-1]
    if len(pending) > 1 and newest.end >= now - timedelta(seconds=2 * target_s):
        return newest
    return pending[0]


@dataclass
class LaneHealth:
    name: str
    local_id: int
    hub_id: int | None = None
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    recording: bool = False
    uploaded: int = 0
    last_uploaded_end: datetime | None = None
    last_error: str | None = None


class _SpoolSink:
    """Where the recorder supervisors report: segments into the spool, and the recorder's own gaps (the
    camera lost) as gap events the hub receives like the quota's, so its index shows them as for a pulled
    camera."""

    def __init__(self, spool: Spool, logger: logging.Logger) -> None:
        self._spool = spool
        self._log = logger

    def segment(self, done: SegmentDone) -> None:
        self._spool.add(done)

    def gap(self, camera_id: int, start: datetime, reason: str, detail: str) -> None:
        self._log.info("camera %s: recording gap from %s (%s: %s)", camera_id, start.isoformat(), reason, detail)
        self._spool.recorder_gap(camera_id, start, reason, redact(detail))


class Gateway:
    """``start`` returns at once; ``close`` stops recording (each camera finishes its segment) and uploading."""

    def __init__(self, cfg: EdgeConfig, logger: logging.Logger, clock: Callable[[], datetime] = utcnow) -> None:
        self.cfg = cfg
        self._log = logger
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self.spool = Spool(cfg.spool_dir, cfg.quota_bytes, logger, on_change=self._notify)
        self.client = HubClient(cfg, logger)
        self._rec = RecordingSettings(segment_target_s=cfg.segment_target_s, part_target_s=cfg.part_target_s,
                                      engine=cfg.engine, connect_timeout_s=cfg.connect_timeout_s, min_free_bytes=0)
        self._sink = _SpoolSink(self.spool, logger)
        self.streamer = (LiveStreamer(self.client, self.spool, self._stop, logger, cfg.live_poll_s)
                         if cfg.live_parts != "off" else None)
        self._supervisors: list[Supervisor] = []
        self._threads: list[threading.Thread] = []
        self._lanes: dict[str, LaneHealth] = {}
        self._lock = threading.Lock()
        self.last_contact: datetime | None = None
        self._rng = random.Random()
        self._idle_s = min(1.0, 5 * cfg.live_poll_s) if cfg.live_parts != "off" else 1.0
        # A client of its own (pinned the same way): a lane's broken connection closes the client it shares,
        # which must not cut the relay's held long poll, nor the other way round.
        self.relay = RelayLink(HubClient(cfg, logger), cfg.spool_dir / "relay", self._rec, logger, clock,
                               self._stop, cfg.connect_timeout_s, cfg.backoff_min_s, cfg.backoff_max_s)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        recovered = self.spool.recover()
        if recovered:
            self._log.info("spool: %d segment(s) recovered after an unclean stop", recovered)
        for cam in self.cfg.cameras:
            lane = LaneHealth(cam.name, self.spool.local_id(cam.name))
            lane.hub_id = self.spool.hub_id(lane.local_id)
            self._lanes[cam.name] = lane
            self._spawn(functools.partial(self._camera, cam, lane), f"edge-{lane.local_id}")
        self._spawn(self._health_loop, "edge-health")
        if any(cam.view_only for cam in self.cfg.cameras):
            self._spawn(self.relay.run, "edge-relay-link")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        self._notify()
        with self._lock:
            sups = list(self._supervisors)
        for sup in sups:
            sup.stop()
        for sup in sups:
            sup.join(self.cfg.connect_timeout_s + self.cfg.segment_target_s * 2)
        for thread in self._threads:
            thread.join(self.cfg.http_timeout_s + 5)
        self.relay.close()  # after its thread ended: no pull starts behind it
        self.client.shutdown()
        self._write_health()

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # -- one camera -----------------------------------------------------------------------------------

    def _camera(self, cam: EdgeCamera, lane: LaneHealth) -> None:
        try:
            result = probe_stream(cam.url, cam.username, cam.secret(), self.cfg.policy, self.cfg.probe_seconds,
                                  self.cfg.connect_timeout_s)
        except ValueError as exc:  # a missing password variable: the camera cannot be used, say so
            lane.verdict, lane.last_error = "rejected", str(exc)
            self._log.error("camera '%s': %s", cam.name, exc)
            return
        lane.verdict = result.verdict
        lane.reasons = list(result.codes)
        self._log.info("camera '%s': probe %s %s", cam.name, result.verdict, ",".join(result.codes))
        if result.verdict == "accepted" and not cam.view_only:
            spec = SourceSpec(lane.local_id, cam.url, cam.username, cam.secret(), "tcp", self.cfg.connect_timeout_s)
            sup = Supervisor(spec, self.spool.store, self._rec, self._sink, clock=self._clock, logger=self._log,
                             space_ok=lambda: True)
            with self._lock:
                if self._stop.is_set():
                    return
                self._supervisors.append(sup)
            sup.start()
            lane.recording = True
        self._lane(cam, lane, result)

    def _lane(self, cam: EdgeCamera, lane: LaneHealth, result: ProbeResult) -> None:
        attempt = 0
        reported = False
        while not self._stop.is_set():
            try:
                if not reported:
                    info = self.client.register_camera(cam.name, cam.view_only, result.to_dict())
                    self.spool.set_hub_id(lane.local_id, int(info["id"]), int(info["next_seq"]))
                    lane.hub_id = int(info["id"])
                    reported = True
                    self._contact()
                    if cam.view_only and result.verdict == "accepted":
                        self.relay.offer(Offered(lane.hub_id, lane.local_id, cam))
                assert lane.hub_id is not None
                if self._deliver(lane, lane.hub_id):
                    attempt = 0
                    lane.last_error = None
                    continue
                with self._wake:
                    if not self.spool.pending(lane.local_id) and not self.spool.gaps(lane.local_id):
                        # Streaming, the next segment's partial is looked for soon: its first part is live
                        # view. (A new segment in the spool wakes the lane at once either way.)
                        self._wake.wait(self._idle_s if self._streaming(lane) else 1.0)
                continue
            except (HubUnreachable, PinMismatch, HubRefused, OSError, ValueError) as exc:
                lane.last_error = redact(str(exc))
                level = logging.WARNING if isinstance(exc, HubUnreachable) else logging.ERROR
                self._log.log(level, "camera '%s': %s", cam.name, lane.last_error)
            delay = backoff_delay(attempt, self.cfg.backoff_min_s, self.cfg.backoff_max_s, self._rng)
            attempt += 1
            self._stop.wait(delay)

    def _deliver(self, lane: LaneHealth, hub_id: int) -> bool:
        """Send this camera's gap events, then one segment; False if there was nothing to send."""
        for path, event in self.spool.gaps(lane.local_id):
            self.client.send_gap(hub_id, event)
            self.spool.gap_sent(path, event)
            self._contact()
        pending = self.spool.pending(lane.local_id)
        if not pending:
            # No backlog: the segment being recorded goes as it grows (live view by parts), while the hub
            # says the camera is watched (the answer to the last upload), or always if so configured.
            streamed = (self.streamer.stream(hub_id, lane.local_id)
                        if self.streamer and self._streaming(lane) else None)
            if streamed is None:
                return False
            self._delivered(lane, streamed)
            return True
        item = choose_next(pending, self._clock(), self.cfg.segment_target_s)
        if not self.spool.begin(item):
            return True
        try:
            self.client.upload(hub_id, item, self.spool.local_path(item))
        except DigestMismatch:
            # Our bytes changed since they were recorded (disk fault, tampering): resending cannot help.
            if sha256_file(self.spool.local_path(item)) != item.sha256:
                self.spool.quarantine(item, "its bytes no longer match the SHA-256 taken when it was recorded")
                return True
            raise  # damaged on the way: retried
        except HubRefused as exc:
            if exc.code == "conflict":
                self.spool.quarantine(item, str(exc))
                return True
            raise
        finally:
            self.spool.end(item)
        self.spool.delivered(item)
        self._delivered(lane, item)
        return True

    def _streaming(self, lane: LaneHealth) -> bool:
        """Whether the camera's segment in progress is to be streamed: recorded, and watched or always."""
        if not lane.recording or lane.hub_id is None or self.cfg.live_parts == "off":
            return False
        return self.cfg.live_parts == "always" or self.client.watched.get(lane.hub_id, False)

    def _delivered(self, lane: LaneHealth, item: Spooled) -> None:
        self._contact()
        lane.uploaded += 1
        lane.last_uploaded_end = max(item.end, lane.last_uploaded_end or item.end)

    def _contact(self) -> None:
        self.last_contact = self._clock()

    # -- health ---------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The gateway's own health and each camera's; safe to show (no addresses, no credentials)."""
        now = self._clock()
        count, oldest_end = self.spool.pending_total()
        with self._lock:
            sups = {s.spec.camera_id: s.health() for s in self._supervisors}
        cams = []
        for lane in self._lanes.values():
            h = sups.get(lane.local_id)
            cams.append({"name": lane.name, "camera_id": lane.hub_id, "verdict": lane.verdict,
                         "reasons": lane.reasons, "recording": lane.recording,
                         "state": h.state if h else ("view_only" if lane.verdict == "accepted" else "not_recorded"),
                         "pending_segments": len(self.spool.pending(lane.local_id)), "uploaded": lane.uploaded,
                         "streaming": self._streaming(lane),
                         "last_uploaded_end": lane.last_uploaded_end.isoformat() if lane.last_uploaded_end else None,
                         "last_error": lane.last_error})
        batches = self.client.batches
        return {"at": now.isoformat(), "spool_bytes": self.spool.used(), "quota_bytes": self.cfg.quota_bytes,
                "relaying": self.relay.relaying(),
                # First tries of finished segments sent together (edge/batching.py): requests, and segments in them.
                "batches": {"requests": batches.requests, "segments": batches.items, "largest": batches.largest}
                if batches is not None else None,
                "pending_segments": count, "dropped_segments": self.spool.dropped,
                "upload_lag_s": (now - oldest_end).total_seconds() if oldest_end else 0.0,
                "last_contact": self.last_contact.isoformat() if self.last_contact else None, "cameras": cams}

    def _write_health(self) -> None:
        path: Path = self.cfg.spool_dir / "health.json"
        tmp = path.with_name("health.json.tmp")
        tmp.write_text(json.dumps(self.health(), indent=2))
        tmp.replace(path)

    def _health_loop(self) -> None:
        while True:
            try:
                self._write_health()
                self.client.health(self.health())
                self._contact()
            except (HubUnreachable, PinMismatch, HubRefused, OSError, ValueError) as exc:
                self._log.info("health report not delivered: %s", redact(str(exc)))
            if self._stop.wait(self.cfg.health_interval_s):
                return
