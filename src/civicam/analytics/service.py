"""Live analytics in the hub: each accepted camera's published segments, analysed behind the recorder.

Analysis reads the segments the recorder has already written, so it can never slow recording down; a
bounded backlog per camera drops the oldest segments when analysis falls behind, and the lag shows in
health. Tracks live in this process's memory only; what is stored is 15-minute counts.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import Empty, Queue

from sqlalchemy import select

from civicam.analytics.aggregation import CameraEvent, add_events
from civicam.analytics.faces import ANALYTICS_MIN_SCORE, create_detector
from civicam.analytics.pipeline import FrameAnalyzer, VideoAnalyzer, sample_frames
from civicam.analytics.suitability import Suitability, SuitabilityWindow
from civicam.config.analytics import AnalyticsSettings
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Camera
from civicam.storage.backend import SegmentStore
from civicam.storage.models import Segment

# A gap longer than this between two segments ends every track: nobody stands still through it.
TRACK_BREAK = timedelta(seconds=10)


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


class AnalyticsService:
    """start()/close() lifecycle like every hub service; ``poll_once``/``work_once`` drive it in tests."""

    def __init__(self, ctx: Context, logger: logging.Logger, *, store: SegmentStore | None = None,
                 settings: AnalyticsSettings | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        from civicam.ingest.service import store_for

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

    # --- discovery ---------------------------------------------------------------------------------

    def _state(self, camera_id: int) -> CameraState:
        state = self._cameras.get(camera_id)
        if state is None:
            s = self.settings
            detector = create_detector(s.detector, {"min_score": ANALYTICS_MIN_SCORE})
            analyzer = VideoAnalyzer(FrameAnalyzer(detector=detector), fps=s.fps)
            state = CameraState(camera_id, analyzer, SuitabilityWindow(s.suitability_window),
                                deque(maxlen=s.max_backlog))
            self._cameras[camera_id] = state
        return state

    def poll_once(self) -> int:
        """Queue segments published since the last poll for accepted cameras; returns how many."""
        with self.ctx.db.session() as s:
            if not self._started:
                # On start, begin at the newest segment: analytics is live, not a re-run of old footage.
                newest = s.execute(select(Segment.id).order_by(Segment.id.desc()).limit(1)).scalar_one_or_none()
                self._last_segment_id = newest - 1 if newest else 0
                self._started = True
            rows = s.execute(
                select(Segment.id, Segment.camera_id, Segment.path, Segment.start, Segment.end, Segment.session)
                .join(Camera, Camera.id == Segment.camera_id)
                .where(Segment.id > self._last_segment_id, Camera.status == "accepted",
                       Camera.view_only.is_(False))
                .order_by(Segment.id).limit(1000)
            ).all()
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

    def _analyse(self, state: CameraState, seg: SegmentRef) -> list[CameraEvent]:
        out: list[CameraEvent] = []
        prev = state.last
        if prev is None or seg.session != prev.session or seg.start - prev.end > TRACK_BREAK:
            out += self._stamp(state, state.analyzer.tracker.flush())
            state.origin = seg.start
        assert state.origin is not None
        offset = (seg.start - state.origin).total_seconds()
        fa = state.analyzer.frame_analyzer
        for t, frame in sample_frames(self.store.local_path(seg.path), state.analyzer.fps):
            faces, results = fa.analyze_raw(frame)
            state.suitability.add(float(h) for h, sc in zip(faces.heights, faces.scores, strict=True)
                                  if sc >= fa.report_score)
            out += self._stamp(state, state.analyzer.tracker.update(offset + t, faces, results))
        state.last = seg
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
                                       st.suitability.verdict())
        return out

    # --- lifecycle ---------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.poll_interval_s):
            try:
                self.poll_once()
            except Exception:
                self.log.exception("analytics: polling for segments failed")

    def _work_loop(self) -> None:
        while not self._stop.is_set():
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
