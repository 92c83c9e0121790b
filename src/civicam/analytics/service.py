"""Live analytics in the hub: each accepted camera's published segments, analysed behind the recorder.

Analysis reads the segments the recorder has already written, so it can never slow recording down; a
bounded backlog per camera drops the oldest segments when analysis falls behind, and the lag shows in
health. Tracks live in this process's memory only; what is stored is 15-minute counts.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import Empty, Queue
from typing import Protocol, runtime_checkable

from sqlalchemy import select

from civicam.analytics.aggregation import CameraEvent, add_events
from civicam.analytics.batching import Batcher
from civicam.analytics.detections import Detections
from civicam.analytics.faces import ANALYTICS_MIN_SCORE, DEFAULT_DETECTOR, analytics_options, create_detector
from civicam.analytics.pipeline import Frame, FrameAnalyzer, RateSampler, VideoAnalyzer, sample_frames
from civicam.analytics.suitability import Suitability, SuitabilityWindow
from civicam.config.analytics import AnalyticsSettings
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Camera
from civicam.storage.backend import SegmentStore
from civicam.storage.models import Segment

# A gap longer than this between two segments ends every track: nobody stands still through it.
TRACK_BREAK = timedelta(seconds=10)
# How long analysis waits for the blurred live view to finish reading a segment it is blurring (it ends a
# fraction of a second after the recorder publishes it) before decoding the segment itself.
SHARE_WAIT_S = 2.0
# A segment's sampled frames: (seconds from its first frame, the picture if decoded, faces if already found).
Sampled = list[tuple[float, Frame | None, Detections | None]]


@dataclass(frozen=True)
class SegmentRef:
    id: int
    path: str
    start: datetime
    end: datetime
    session: str


@dataclass
class CameraState:
    camera_id: int
    analyzer: VideoAnalyzer
    suitability: SuitabilityWindow
    backlog: deque[SegmentRef]
    origin: datetime | None = None  # wall time of the analyzer's t = 0
    last: SegmentRef | None = None
    analyzed: int = 0
    dropped: int = 0
    people: int = 0
    queued: bool = False
    errors: int = 0
    shared: int = 0  # segments analysed from the blurred live view's detections, not decoded again
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class AnalyticsHealth:
    camera_id: int
    lag_s: float | None
    backlog: int
    analyzed_segments: int
    dropped_segments: int
    people: int
    errors: int
    suitability: Suitability
    shared_segments: int = 0  # of analyzed_segments: from the blurred live view's detections (not decoded)


@runtime_checkable
class AnalyticsHealthSource(Protocol):
    """Whatever analyses the hub's cameras, here or on a cluster: the API's analytics health reads it.

    None: nothing analyses (analytics is off there, or a cluster's controller does not answer).
    """

    def analytics_health(self) -> dict[int, AnalyticsHealth] | None: ...


class AnalyticsService:
    """start()/close() lifecycle like every hub service; ``poll_once``/``work_once`` drive it in tests."""

    def __init__(self, ctx: Context, logger: logging.Logger, *, store: SegmentStore | None = None,
                 settings: AnalyticsSettings | None = None, clock: Callable[[], datetime] = utcnow,
                 scope: Collection[int] | None = None) -> None:
        from civicam.ingest.service import store_for

        # None: every accepted camera; else only these (one cluster node's share, see set_scope).
        self.scope: frozenset[int] | None = None if scope is None else frozenset(scope)
        self.ctx, self.log, self.clock = ctx, logger, clock
        self.settings = settings or ctx.settings.analytics
        self.store = store or store_for(ctx)
        self._cameras: dict[int, CameraState] = {}
        self._ready: Queue[int] = Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_segment_id = 0
        self._started = False
        self._guard = threading.Lock()
        self._detector_lock = threading.Lock()
        self._batcher: Batcher | None = None

    # --- discovery ---------------------------------------------------------------------------------

    def _state(self, camera_id: int) -> CameraState:
        state = self._cameras.get(camera_id)
        if state is None:
            s = self.settings
            shared = self._batch().detector if s.batch_cameras > 1 else None
            # Batched: every camera uses the node's one shared detector (on its GPU), not a session each.
            detector = shared if shared is not None else create_detector(
                s.detector, analytics_options(s.detector, s.mirror_pass))
            analyzer = VideoAnalyzer(FrameAnalyzer(detector=detector), fps=s.fps)
            state = CameraState(camera_id, analyzer, SuitabilityWindow(s.suitability_window),
                                deque(maxlen=s.max_backlog))
            self._cameras[camera_id] = state
        return state

    def set_scope(self, cameras: Collection[int]) -> None:
        """Analyse only these cameras from now on; the open tracks of those dropped are ended and stored."""
        scope = frozenset(cameras)
        with self._guard:
            self.scope = scope
            gone = [self._cameras[c] for c in self._cameras if c not in scope]
        events: list[CameraEvent] = []
        for state in gone:
            with state.lock:
                state.backlog.clear()
            events += self._stamp(state, state.analyzer.tracker.flush())
            state.last = None  # if it comes back, its tracks start afresh
        if events:
            with self.ctx.db.session() as s:
                add_events(s, events)

    def poll_once(self) -> int:
        """Queue segments published since the last poll for accepted cameras; returns how many."""
        scope = self.scope
        if scope is not None and not scope:
            return 0
        with self.ctx.db.session() as s:
            if not self._started:
                # On start, begin at the newest segment: analytics is live, not a re-run of old footage.
                newest = s.execute(select(Segment.id).order_by(Segment.id.desc()).limit(1)).scalar_one_or_none()
                self._last_segment_id = newest - 1 if newest else 0
                self._started = True
            query = (select(Segment.id, Segment.camera_id, Segment.path, Segment.start, Segment.end, Segment.session)
                     .join(Camera, Camera.id == Segment.camera_id)
                     .where(Segment.id > self._last_segment_id, Camera.status == "accepted",
                            Camera.view_only.is_(False)))
            if scope is not None:
                query = query.where(Segment.camera_id.in_(sorted(scope)))
            rows = s.execute(query.order_by(Segment.id).limit(1000)).all()
        for sid, cid, path, start, end, session in rows:
            self._last_segment_id = max(self._last_segment_id, sid)
            with self._guard:
                state = self._state(cid)
            with state.lock:
                if len(state.backlog) == state.backlog.maxlen:
                    state.dropped += 1  # deque drops the oldest; count it so the lag is visible
                state.backlog.append(SegmentRef(sid, path, start, end, session))
                if not state.queued:
                    state.queued = True
                    self._ready.put(cid)
        return len(rows)

    # --- analysis ----------------------------------------------------------------------------------

    def _analyse(self, state: CameraState, seg: SegmentRef,
                 decoded: Sampled | None = None) -> list[CameraEvent]:
        """One segment of one camera; ``decoded``: its frames already sampled and detected (a batch)."""
        out: list[CameraEvent] = []
        prev = state.last
        if prev is None or seg.session != prev.session or seg.start - prev.end > TRACK_BREAK:
            out += self._stamp(state, state.analyzer.tracker.flush())
            state.origin = seg.start
        assert state.origin is not None
        offset = (seg.start - state.origin).total_seconds()
        fa = state.analyzer.frame_analyzer
        if decoded is None:
            decoded = self._shared(state, seg)
        if decoded is None:
            decoded = [(t, f, None) for t, f in sample_frames(self.store.local_path(seg.path), state.analyzer.fps)]
        for t, frame, found in decoded:
            faces, results = fa.analyze_raw(frame, found)
            state.suitability.add(float(h) for h, sc in zip(faces.heights, faces.scores, strict=True)
                                  if sc >= fa.report_score)
            out += self._stamp(state, state.analyzer.tracker.update(offset + t, faces, results))
        state.last = seg
        return out

    def _shared(self, state: CameraState, seg: SegmentRef) -> Sampled | None:
        """The segment's faces as the blurred live view found them (analytics/shared.py), sampled at this
        service's rate and kept down to its threshold; None where it has none (nobody watched, another
        detector, labels that need the picture): then the segment is decoded as usual."""
        s = self.settings
        if not s.share_live_detections or s.detector != DEFAULT_DETECTOR \
                or state.analyzer.frame_analyzer.labeller.needs_picture:
            return None
        frames = self.ctx.detections.take(self.store.local_path(seg.path), wait_s=SHARE_WAIT_S)
        if frames is None:
            return None
        out: Sampled = []
        sampler = RateSampler(state.analyzer.fps)
        first = frames[0][0]
        for t, faces in frames:
            t -= first  # from the segment's first detected frame, as sample_frames counts
            if not sampler.keep(t):
                continue
            out.append((t, None, faces.select(faces.scores >= ANALYTICS_MIN_SCORE)))
        state.shared += 1
        return out

    @staticmethod
    def _stamp(state: CameraState, events: list) -> list[CameraEvent]:  # type: ignore[type-arg]
        origin = state.origin
        if origin is None:
            return []
        return [CameraEvent(state.camera_id, origin + timedelta(seconds=e.time_s), e.label, e.confidence)
                for e in events]

    def work_once(self, timeout: float = 0.5) -> bool:
        """Analyse one queued segment of one camera; False when nothing was waiting."""
        try:
            cid = self._ready.get(timeout=timeout)
        except Empty:
            return False
        state = self._cameras[cid]
        with state.lock:
            seg = state.backlog.popleft() if state.backlog else None
        if seg is not None:
            try:
                events = self._analyse(state, seg)
                if events:
                    with self.ctx.db.session() as s:
                        add_events(s, events)
                state.people += len(events)
                state.analyzed += 1
            except Exception:  # one bad segment must not stop analytics for this camera
                state.errors += 1
                self.log.exception("analytics: camera %s segment %s failed", cid, seg.id)
        with state.lock:
            if state.backlog:
                self._ready.put(cid)
            else:
                state.queued = False
        return True

    def _batch(self) -> Batcher:
        if self._batcher is None:
            self._batcher = Batcher(self.settings.detector, self.settings.accelerator,
                                    mirror=self.settings.mirror_pass)
        return self._batcher

    def work_batch(self, timeout: float = 0.5) -> int:
        """The next segment of up to ``batch_cameras`` waiting cameras, their frames detected together.

        Detection, the bulk of the work, runs in shared network runs across cameras (one GPU call for
        many cameras' frames); tracking and counting then go camera by camera in time order, as in
        ``work_once``. Returns how many segments were analysed.
        """
        try:
            first = self._ready.get(timeout=timeout)
        except Empty:
            return 0
        cids = [first]
        while len(cids) < self.settings.batch_cameras:
            try:
                cids.append(self._ready.get_nowait())
            except Empty:
                break
        work: list[tuple[CameraState, SegmentRef]] = []
        for cid in cids:
            state = self._cameras[cid]
            with state.lock:
                seg = state.backlog.popleft() if state.backlog else None
            if seg is not None:
                work.append((state, seg))
        batcher = self._batch()
        decoded: list[list[tuple[float, Frame]]] = []
        for state, seg in work:
            try:
                decoded.append(list(sample_frames(self.store.local_path(seg.path), state.analyzer.fps,
                                                  batcher.decoder_for(seg.path, self.store))))
            except Exception:  # a torn segment: count it against its camera, analyse the others
                decoded.append([])
                state.errors += 1
                self.log.exception("analytics: camera %s segment %s could not be decoded", state.camera_id, seg.id)
        found = batcher.detect([f for frames in decoded for _, f in frames])
        i = 0
        for (state, seg), frames in zip(work, decoded, strict=True):
            mine = found[i:i + len(frames)]
            i += len(frames)
            try:
                events = self._analyse(state, seg, [(t, f, d) for (t, f), d in zip(frames, mine, strict=True)])
                if events:
                    with self.ctx.db.session() as s:
                        add_events(s, events)
                state.people += len(events)
                state.analyzed += 1
            except Exception:  # one bad segment must not stop analytics for this camera
                state.errors += 1
                self.log.exception("analytics: camera %s segment %s failed", state.camera_id, seg.id)
        for cid in cids:
            state = self._cameras[cid]
            with state.lock:
                if state.backlog:
                    self._ready.put(cid)
                else:
                    state.queued = False
        return len(work)

    def flush(self) -> int:
        """End every open track (on shutdown, or in tests) and store the resulting events."""
        events: list[CameraEvent] = []
        for state in list(self._cameras.values()):
            ended = self._stamp(state, state.analyzer.tracker.flush())
            state.people += len(ended)
            events += ended
        if events:
            with self.ctx.db.session() as s:
                add_events(s, events)
        return len(events)

    def health(self) -> dict[int, AnalyticsHealth]:
        now = self.clock()
        out: dict[int, AnalyticsHealth] = {}
        for cid, st in list(self._cameras.items()):
            lag = (now - st.last.end).total_seconds() if st.last else None
            out[cid] = AnalyticsHealth(cid, lag, len(st.backlog), st.analyzed, st.dropped, st.people, st.errors,
                                       st.suitability.verdict(), st.shared)
        return out

    def analytics_health(self) -> dict[int, AnalyticsHealth]:
        """``health`` of the cameras this service analyses now (a cluster node's share: its scope only)."""
        scope = self.scope
        return {c: h for c, h in self.health().items() if scope is None or c in scope}

    # --- lifecycle ---------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.poll_interval_s):
            try:
                self.poll_once()
            except Exception:
                self.log.exception("analytics: polling for segments failed")

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            if self.settings.batch_cameras > 1:
                self.work_batch()
            else:
                self.work_once()

    def start(self) -> None:
        if not self.settings.enabled:
            return
        self._threads = [threading.Thread(target=self._poll_loop, name="analytics-poll", daemon=True)]
        self._threads += [threading.Thread(target=self._work_loop, name=f"analytics-{i}", daemon=True)
                          for i in range(self.settings.workers)]
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        try:
            self.flush()
        except Exception:
            self.log.exception("analytics: final flush failed")
