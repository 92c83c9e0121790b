"""The recording service: one supervisor per accepted camera, the index writer and the retention cleaner."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy import func, select

from civicam.config.recording import RecordingSettings
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Camera
from civicam.domain.retention import Decision
from civicam.ingest.handover import Handover
from civicam.ingest.sources import SourceSpec
from civicam.ingest.supervisor import CameraHealth, Supervisor
from civicam.registry.service import credentials, stream_url
from civicam.storage.backend import SegmentStore
from civicam.storage.cleaner import clean, expire_exports, recording_allowed
from civicam.storage.factory import open_store
from civicam.storage.index import Indexer
from civicam.storage.models import Segment
from civicam.storage.reconcile import ReconcileReport, reconcile


def recording_settings(ctx: Context) -> RecordingSettings:
    """The recording settings of the hub."""
    return ctx.settings.recording


def store_for(ctx: Context) -> SegmentStore:
    """The segment store of the hub: ``<data_dir>/recordings``, or the bucket of ``storage.backend = "s3"``."""
    return open_store(ctx.settings)


@runtime_checkable
class RecordingHealthSource(Protocol):
    """Whatever records the hub's cameras, here or on a cluster: the API's recording health reads it."""

    def recording_health(self) -> dict[int, CameraHealth]: ...


class RecordingService:
    """Records every camera whose status is 'accepted'; ``start`` returns at once, ``close`` stops everything.

    ``scope`` limits it to some of them (one node of a cluster records the cameras its controller gave it;
    see ``set_scope``). ``maintenance=False`` leaves out start-up repair and the retention cleaner, which
    must run once per store, not once per node: repair would discard the partial segments other nodes are
    writing.
    """

    def __init__(
        self,
        ctx: Context,
        logger: logging.Logger,
        *,
        settings: RecordingSettings | None = None,
        store: SegmentStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        scope: Collection[int] | None = None,
        maintenance: bool = True,
    ) -> None:
        self.ctx = ctx
        self._scope: frozenset[int] | None = None if scope is None else frozenset(scope)
        self._maintenance = maintenance
        self.settings = settings or recording_settings(ctx)
        self.store: SegmentStore = store or store_for(ctx)
        self._log = logger
        self._clock = clock
        self.indexer = Indexer(ctx.db, logger)
        self._supervisors: dict[int, Supervisor] = {}
        self._standby: dict[int, Handover] = {}  # cameras held ready to take over (see ``prepare``)
        self._specs: dict[int, SourceSpec] = {}
        self._lock = threading.RLock()
        self._stopping: set[Supervisor] = set()  # stopped by a refresh, not yet joined and forgotten
        self._stopped = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._wake_cleaner = threading.Event()
        self._threads: list[threading.Thread] = []
        self.reconcile_report: ReconcileReport | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Repair the store, then start recording; returns without blocking."""
        if not self.settings.enabled:
            self._log.info("recording is disabled (recording.enabled = false)")
            return
        if self._maintenance:
            self.reconcile_report = reconcile(self.ctx.db, self.store, self._log)
        self.indexer.start()
        self.refresh()
        loops = [(self._poll_loop, "rec-refresh")]
        if self._maintenance:
            loops.append((self._cleaner_loop, "rec-cleaner"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop every camera (each finishes its current segment), then the cleaner and the index writer."""
        self._stop.set()
        self._wake_cleaner.set()
        if not self.settings.enabled:
            return
        with self._lock:
            sups = list(self._supervisors.values())
            self._supervisors.clear()
        for sup in sups:
            sup.stop()
        for sup in sups:
            sup.join(self.settings.connect_timeout_s + self.settings.segment_target_s * 2)
        for thread in self._threads:
            thread.join(10)
        self.indexer.close()

    # -- cameras --------------------------------------------------------------------------------------

    def set_scope(self, cameras: Collection[int]) -> None:
        """Record only these cameras (those of them that are accepted) from now on.

        Returns once the cameras dropped from the scope have stopped and their last segments are in the
        index, so another node may take them over at once: it opens their gap where this one stopped,
        and the two never record one camera at the same time.
        """
        scope = frozenset(cameras)
        with self._lock:
            promoted = {c: h for c, h in self._standby.items() if c in scope}
        # Where the old recorders stopped: their last segments are in the index before this is called.
        since = self._last_ends(promoted) if promoted else {}
        with self._lock:
            self._scope = scope
            for cam, handover in promoted.items():
                handover.release(since.get(cam))
            # Others stay on standby until their own release or expiry: this may be another handover's call.
            self._standby = {c: h for c, h in self._standby.items() if c not in scope}
        if self.settings.enabled:
            self.refresh(wait=True)

    @property
    def scope(self) -> frozenset[int] | None:
        return self._scope

    def prepare(self, cameras: Collection[int], timeout_s: float) -> None:
        """Make-before-break: connect to these cameras, which another recorder still records, and hold.

        Each new recorder receives its stream and keeps the last GOPs without writing (ingest/handover.py).
        A later ``set_scope`` that includes the camera releases it to continue where the old recorder's
        last indexed segment ends; one that does not, or ``timeout_s`` without either, drops it.
        """
        with self._lock:
            for cam in cameras:
                if cam not in self._standby and (self._scope is None or cam not in self._scope):
                    self._standby[cam] = Handover(timeout_s)
        if self.settings.enabled:
            self.refresh()

    def standby(self) -> dict[int, bool]:
        """Cameras held ready to take over, and whether each one's stream is coming in (a keyframe held)."""
        with self._lock:
            return {cam: h.receiving.is_set() for cam, h in self._standby.items()}

    def _last_ends(self, cameras: Collection[int]) -> dict[int, datetime]:
        with self.ctx.db.session() as session:
            return dict(session.execute(
                select(Segment.camera_id, func.max(Segment.end)).where(Segment.camera_id.in_(sorted(cameras)))
                .group_by(Segment.camera_id)).tuples().all())

    def refresh(self, wait: bool = False) -> None:
        """Start recorders for newly accepted cameras and stop those no longer accepted or changed.

        ``wait``: join the stopped recorders and flush the index before returning (a handover).
        """
        with self._lock:
            for expired in [c for c, h in self._standby.items() if h.expired()]:
                self._log.warning("camera %s: handover not released in time; the standby recorder is dropped",
                                  expired)
                del self._standby[expired]
            standby = dict(self._standby)
        with self.ctx.db.session() as session:
            query = select(Camera).where(Camera.status == "accepted", Camera.source == "pull",
                                         Camera.view_only.is_(False))
            scope = self._scope
            if scope is not None:
                query = query.where(Camera.id.in_(sorted(scope | frozenset(standby))))
            cams = session.execute(query).scalars().all() if scope is None or scope or standby else []
            wanted: dict[int, SourceSpec] = {}
            for cam in cams:
                user, pw = credentials(self.ctx.secrets, cam)
                wanted[cam.id] = SourceSpec(cam.id, stream_url(self.ctx.secrets, cam), user, pw,
                                            self.settings.rtsp_transport,
                                            self.settings.connect_timeout_s)
            last_end = dict(session.execute(
                select(Segment.camera_id, func.max(Segment.end)).group_by(Segment.camera_id)).tuples().all())
        stopped: list[Supervisor] = []
        with self._lock:
            if self._stop.is_set():
                return
            if (self._scope is not None and self._scope != scope) or self._standby.keys() != standby.keys():
                return  # the scope changed while the database was read; that call's refresh decides
            for cam_id in list(self._supervisors):
                if self._specs.get(cam_id) != wanted.get(cam_id):
                    sup = self._supervisors.pop(cam_id)
                    sup.stop()
                    stopped.append(sup)
                    self._stopping.add(sup)
                    self._specs.pop(cam_id, None)
                    self._log.info("camera %s: recording stopped", cam_id)
            for cam_id, spec in wanted.items():
                if cam_id in self._supervisors:
                    continue
                sup = Supervisor(spec, self.store, self.settings, self.indexer, clock=self._clock,
                                 logger=self._log, space_ok=self._space_ok, last_segment_end=last_end.get(cam_id),
                                 handover=standby.get(cam_id))
                self._supervisors[cam_id] = sup
                self._specs[cam_id] = spec
                sup.start()
                self._log.info("camera %s: recording started", cam_id)
        patience = self.settings.connect_timeout_s + self.settings.segment_target_s * 2
        # Joined before the index writer forgets the camera, so its last segment is written first.
        for sup in stopped:
            sup.join(patience)
            if sup.spec.camera_id not in wanted:
                # Another process may record it next: what this one remembers of it would be stale then.
                self.indexer.forget(sup.spec.camera_id)
            with self._stopped:
                self._stopping.discard(sup)
                self._stopped.notify_all()
        if wait:
            # A refresh of the poll loop may have stopped some of them just before this one: wait for those too.
            with self._stopped:
                self._stopped.wait_for(lambda: not self._stopping, timeout=patience * 2)
            self.indexer.flush(30)

    def health(self) -> dict[int, CameraHealth]:
        """Per camera: state and since when, counters, last (redacted) error, and the disk-paused flag.

        Standby recorders are left out: the camera's health is its recording recorder's, elsewhere.
        """
        with self._lock:
            return {cam_id: sup.health() for cam_id, sup in self._supervisors.items() if cam_id not in self._standby}

    def recording_health(self) -> dict[int, CameraHealth]:
        return self.health()

    # -- storage --------------------------------------------------------------------------------------

    def _space_ok(self) -> bool:
        ok = recording_allowed(self.store, self.settings)
        if not ok:
            self._wake_cleaner.set()
        return ok

    def clean_now(self) -> Decision:
        """One retention pass (also run periodically and whenever space runs short), expired exports too."""
        now = self._clock()
        decision = clean(self.ctx.db, self.store, self.settings, now, self._log)
        expire_exports(self.ctx.db, self.ctx.settings.data_dir / "exports", self.settings, now, self._log)
        return decision

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.refresh_interval_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001  a database hiccup must not end camera discovery
                self._log.exception("recording: refreshing the camera list failed")

    def _cleaner_loop(self) -> None:
        while not self._stop.is_set():
            self._wake_cleaner.wait(self.settings.cleaner_interval_s)
            self._wake_cleaner.clear()
            if self._stop.is_set():
                break
            try:
                # Segments only count once indexed; wait for the writer so a fresh segment is not missed.
                self.indexer.flush(5)
                self.clean_now()
            except Exception:  # noqa: BLE001
                self._log.exception("recording: retention pass failed")
