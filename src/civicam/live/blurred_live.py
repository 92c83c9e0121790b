"""The blurred live view as low-latency HLS: one pipeline per watched camera and rendition, shared by its viewers.

A pipeline follows the recorder: it reads the segment being written fragment by fragment (the recorder
appends one every part target, 0.4 s), decodes each fragment's samples, blurs faces with ``FaceBlur``
(detection every few frames, a frame released only once the next detection is known, so a face cannot
slip out of its blur), encodes with x264 (zero latency, a keyframe wherever the source segment has one)
and appends one blurred fragment per source fragment to a blurred copy of the segment. Those fragments
are the parts the blurred LL-HLS playlist lists; the copies are named like the source segments, so a
blurred segment lines up with its source. The ``wall`` rendition is blurred at the source's size and
encoded at 640x360 (a quarter of the encoding, and of the browser's decoding); blurring the scaled-down
frame would be cheaper still but left faces recognisable (docs/benchmarks.md, "Camera wall").

Fail-closed: only what a pipeline has blurred is ever listed or served here; when it falls behind, the
player's blocking reload waits; when it fails, the playlist answers an error (the player retries).

Each fetch of a blurred live playlist renews the pipeline's lease; a pipeline nobody renews stops after
``LEASE_S``. ``LiveBlurHub`` holds the pipelines of one hub process.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av

from civicam.analytics.detections import Detections
from civicam.analytics.shared import DetectionBoard
from civicam.domain.segments import PARTIAL_SUFFIX, parse_segment_path, segment_path
from civicam.live import hls
from civicam.live.edge import open_segment_file
from civicam.live.encode import Coded, FragmentEncoder, fragment
from civicam.live.privacy import FaceBlur
from civicam.storage.backend import SegmentStore
from civicam.storage.fragments import scan_fd
from civicam.storage.samples import TrackInit, fragment_samples, read_init

LEASE_S = 12.0  # a pipeline runs this long after the last playlist fetch (players reload every part)
POLL_S = 0.04  # how often the file being written is looked at for a new fragment (a stat)
KEPT = 6  # blurred segments kept per pipeline: the playlist's window and a little more
RENDITIONS: dict[str, tuple[int, int] | None] = {"full": None, "wall": (640, 360)}  # the box it fits in


def rendition_size(rendition: str, width: int, height: int) -> tuple[int, int]:
    """The picture size of ``rendition`` for a source of ``width`` x ``height``: fitted into the rendition's
    box, aspect kept, never enlarged, even sides (4:2:0).

    >>> rendition_size("wall", 1280, 720), rendition_size("wall", 320, 240), rendition_size("wall", 1920, 1440)
    ((640, 360), (320, 240), (480, 360))
    >>> rendition_size("full", 1280, 720)
    (1280, 720)
    """
    box = RENDITIONS[rendition]
    if box is None:
        return width, height
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)

_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z\.mp4$")


class Stopped(Exception):
    """The pipeline was told to stop."""


@dataclass
class BlurredFile:
    """One blurred segment: complete, or being written (listed by its parts only)."""

    seq: int
    start: datetime
    name: str  # the source segment's published file name
    new_session: bool  # does not continue the previous file's timeline and init section
    init_length: int = 0
    parts: list[hls.Part] = field(default_factory=list)
    complete: bool = False

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.parts)


@dataclass(frozen=True)
class Snapshot:
    """What the playlist of a pipeline lists now; ``version`` grows with every new part."""

    version: int
    files: tuple[BlurredFile, ...]
    error: str | None

    @property
    def last_seq(self) -> int:
        done = [f.seq for f in self.files if f.complete]
        return done[-1] if done else (self.files[0].seq - 1 if self.files else -1)

    def part_counts(self) -> dict[int, int]:
        return {f.seq: len(f.parts) for f in self.files}


def _start_of(name: str) -> datetime | None:
    try:
        return datetime.strptime(name, "%Y%m%dT%H%M%S.%fZ.mp4").replace(tzinfo=UTC)
    except ValueError:
        return None


def segment_files(store: SegmentStore, camera_id: int, after: datetime | None, now: datetime) -> list[str]:
    """The camera's segment files (published paths; in progress or not) starting after ``after``, oldest first."""
    times = [now - timedelta(hours=1), now] + ([after] if after is not None else [])
    found: dict[datetime, str] = {}
    for folder in sorted({segment_path(camera_id, t).rsplit("/", 1)[0] for t in times}):
        try:
            names = [e.name for e in os.scandir(store.local_path(folder))]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            base = name.removesuffix(PARTIAL_SUFFIX)
            start = _start_of(base) if _NAME.match(base) else None
            if start is not None and (after is None or start > after):
                found[start] = f"{folder}/{base}"
    return [found[t] for t in sorted(found)]


@dataclass
class _Out:
    """A blurred file being written: its fragments gathered from frames as they are blurred."""

    file: BlurredFile
    fd: int
    size: int = 0
    frags: int = 0
    expected: dict[int, int] = field(default_factory=dict)  # source fragment -> its sample count
    pending: dict[int, list[tuple[Coded, int]]] = field(default_factory=dict)  # fragment -> (sample, duration)
    written: set[int] = field(default_factory=set)  # source fragments whose blurred fragment is written
    source_done: bool = False
    key: str = ""  # the source file's path: what its detections are posted under (analytics/shared.py)
    first_pts: int | None = None  # of its first frame (display order): detection times count from it

    @property
    def whole(self) -> bool:
        """Every fragment of the source is written: the blur may still hold the last frames after the
        source file is read to its end (they wait for the next file's first detection)."""
        return self.source_done and not self.pending and self.written >= self.expected.keys()


class LiveBlur:
    """One camera's blurred live pipeline in one rendition, on a thread of its own."""

    def __init__(self, store: SegmentStore, camera_id: int, rendition: str, root: Path, *,
                 first_seq: Callable[[datetime], int], log: logging.Logger,
                 make_blur: Callable[[], FaceBlur] = FaceBlur, lease_s: float = LEASE_S,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], datetime] | None = None,
                 board: DetectionBoard | None = None) -> None:
        if rendition not in RENDITIONS:
            raise ValueError(f"unknown rendition {rendition!r}")
        self.store, self.camera_id, self.rendition, self.root = store, camera_id, rendition, root
        self._first_seq, self.log, self._make_blur = first_seq, log, make_blur
        self._lease_s, self._clock = lease_s, clock
        self._board = board
        self._now = wall_clock or (lambda: datetime.now(UTC))
        self._until = clock() + lease_s
        self._cond = threading.Condition()
        self._files: list[BlurredFile] = []
        self._version = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = self.skipped = 0  # frames blurred and encoded, segments skipped: for logs and tests

    # -- lifecycle and what the endpoints read -----------------------------------------------------------

    def start(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)  # a previous run's files: its playlist is gone
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._main, name=f"blur-live-{self.camera_id}-{self.rendition}",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def renew(self) -> None:
        with self._cond:
            self._until = self._clock() + self._lease_s

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> Snapshot:
        with self._cond:
            files = tuple(replace(f, parts=list(f.parts)) for f in self._files if f.parts)
            return Snapshot(self._version, files, self.error)

    def wait(self, version: int, timeout_s: float) -> None:
        """Block until a part newer than ``version`` is published (or the timeout); for threads."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != version or self.error is not None, timeout_s)

    def path(self, name: str) -> Path | None:
        """The blurred file ``name`` of this pipeline, if it lists it (a part URI's name)."""
        with self._cond:
            return self.root / name if any(f.name == name and f.parts for f in self._files) else None

    # -- the pipeline ---------------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._stop.is_set():
            raise Stopped
        if self._clock() > self._until:
            self.log.info("blurred live view of camera %s (%s) left: stopping", self.camera_id, self.rendition)
            raise Stopped

    def _sleep(self, seconds: float) -> None:
        self._check()
        self._stop.wait(seconds)

    def _main(self) -> None:
        try:
            self._follow()
        except Stopped:
            pass
        except Exception as exc:  # noqa: BLE001  reported to the players; the hub starts a new one later
            self.log.exception("blurred live view of camera %s (%s) failed", self.camera_id, self.rendition)
            with self._cond:
                self.error = f"{type(exc).__name__}: {exc}"
                self._cond.notify_all()
        finally:
            self._close_all()

    def _follow(self) -> None:
        # Start on the segment being written (from its first fragment, a keyframe): the live edge.
        rel = None
        while rel is None:
            files = segment_files(self.store, self.camera_id, None, self._now())
            growing = [f for f in files if os.path.exists(self.store.local_path(f + PARTIAL_SUFFIX))]
            rel = growing[-1] if growing else None
            if rel is None:
                self._sleep(0.2)
        start = parse_segment_path(rel).start
        self._seq = self._first_seq(start)
        self._session_end: int | None = None  # decode time where the previous file's samples ended
        self._blur = self._new_blur()
        self._enc: FragmentEncoder | None = None
        # source pts -> (blurred file, source fragment, duration, sync sample)
        self._meta: dict[int, tuple[_Out, int, int, bool]] = {}
        self._timescale = 90000
        self._outs: list[_Out] = []
        while True:
            self._segment(rel, start)
            later: list[str] = []
            while not later:
                later = segment_files(self.store, self.camera_id, start, self._now())
                if not later:
                    self._sleep(POLL_S)
            # More than the next file waiting: blurring fell a whole segment behind the camera. Jump to the
            # newest (a discontinuity for the player) rather than fall further behind at every segment.
            skip = len(later) - 1
            if skip:
                self.log.info("blurred live view of camera %s (%s) fell behind: skipping %d segment(s)",
                              self.camera_id, self.rendition, skip)
            rel = later[-1]
            start = parse_segment_path(rel).start
            self._seq += 1 + skip
            self.skipped += skip

    def _new_blur(self) -> FaceBlur:
        blur = self._make_blur()
        if self._board is not None:
            blur.on_detect = self._post
        return blur

    def _post(self, frame: av.VideoFrame, faces: Detections) -> None:
        """A frame's own detection, for analytics of the same segment (analytics/shared.py)."""
        pts = int(frame.pts or 0)
        meta = self._meta.get(pts)
        first = meta[0].first_pts if meta is not None else None
        if meta is None or first is None or self._board is None:
            return
        self._board.post(meta[0].key, float((pts - first) * (frame.time_base or 0)), faces)

    def _segment(self, rel: str, start: datetime) -> None:
        """Blur one source file from its first fragment to its last, following it while it is written."""
        partial = self.store.local_path(rel + PARTIAL_SUFFIX)
        with open_segment_file(self.store, rel) as opened:
            if opened is None:
                return  # deleted before we got to it (retention, or an aborted partial)
            fh = opened[0]
            done = 0
            track: TrackInit | None = None
            decoder: av.VideoCodecContext | None = None
            out: _Out | None = None
            while True:
                growing = os.path.exists(partial)
                index = scan_fd(fh.fileno())
                if track is None and index.fragments:
                    track = read_init(os.pread(fh.fileno(), index.fragments[0].offset, 0))
                    decoder = _decoder(track)
                for frag in index.fragments[done:]:
                    assert track is not None and decoder is not None
                    samples = fragment_samples(os.pread(fh.fileno(), frag.length, frag.offset), track,
                                               frag.decode_time)
                    if not samples:
                        done += 1
                        continue
                    if out is None:
                        out = self._new_out(rel, start, samples[0].decode_time, track)
                        out.key = self.store.local_path(rel)
                        if self._board is not None:
                            self._board.begin(out.key)
                    out.expected[done] = len(samples)
                    for s in samples:
                        packet = av.Packet(s.data)
                        packet.pts, packet.dts = s.decode_time + s.cto, s.decode_time
                        packet.time_base = Fraction(1, track.timescale)
                        self._meta[s.decode_time + s.cto] = (out, done, s.duration, s.sync)
                        for frame in decoder.decode(packet):
                            self._frame(frame, track)
                    self._session_end = samples[-1].decode_time + samples[-1].duration
                    done += 1
                if not growing and (index.size == os.fstat(fh.fileno()).st_size):
                    break  # published (or gone): every fragment it will ever have is read
                self._sleep(POLL_S)
            if decoder is not None:
                assert track is not None
                for frame in decoder.decode(None):
                    self._frame(frame, track)
            if out is not None:
                out.source_done = True
                if self._board is not None:
                    self._board.finish(out.key)  # every frame of it was pushed, so every detection made
                self._write_ready(out, None)

    def _new_out(self, rel: str, start: datetime, first_time: int, track: TrackInit) -> _Out:
        new_session = self._session_end is None or abs(first_time - self._session_end) > track.timescale // 10
        if new_session and self._session_end is not None:
            self._end_session()
        name = rel.rsplit("/", 1)[-1]
        fd = os.open(self.root / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        out = _Out(BlurredFile(self._seq, start, name, new_session), fd)
        self._outs.append(out)
        return out

    def _end_session(self) -> None:
        """The source timeline broke (a reconnection): release what the blur holds, start a new encoder."""
        for frame in self._blur.flush():
            self._emit(frame)
        if self._enc is not None:
            for coded in self._enc.flush():
                self._place(coded)
        for out in self._outs:
            self._write_ready(out, None, final=True)
        self._enc = None
        self._blur = self._new_blur()

    def _frame(self, frame: av.VideoFrame, track: TrackInit) -> None:
        meta = self._meta.get(int(frame.pts or 0))
        if meta is not None and meta[0].first_pts is None:
            meta[0].first_pts = int(frame.pts or 0)
        # Blurred at the source's size, then scaled down (by FaceBlur): blurring the 640x360 frame instead
        # costs 4.6 ms a frame less but left a head recognisable on the true-box oracle (docs/benchmarks.md).
        size = rendition_size(self.rendition, frame.width, frame.height)
        for ready in self._blur.push(frame, None if size == (frame.width, frame.height) else size):
            self._emit(ready)

    def _emit(self, frame: av.VideoFrame) -> None:
        pts = int(frame.pts or 0)
        meta = self._meta.get(pts)
        if meta is None:
            return  # not a frame of ours (cannot happen with a well-formed source): never served
        if self._enc is None:
            tb = frame.time_base or Fraction(1, 90000)
            self._enc = FragmentEncoder(*rendition_size(self.rendition, frame.width, frame.height), tb)
            self._timescale = tb.denominator
        # A keyframe wherever the source has one: each file starts on one (the recorder cuts there), so a
        # blurred file decodes alone and its parts are independent where the source's are.
        for coded in self._enc.encode(frame, meta[3]):
            self._place(coded)
        self.frames += 1

    def _place(self, coded: Coded) -> None:
        meta = self._meta.pop(coded.pts, None)
        if meta is None:
            return
        out, frag, duration, _ = meta
        out.pending.setdefault(frag, []).append((coded, duration))
        self._write_ready(out, frag)

    def _write_ready(self, out: _Out, current: int | None, final: bool = False) -> None:
        """Write the gathered fragments that are whole (or, with ``current``, any older one: frames come in
        order), mark the file complete when its source is done and nothing is left."""
        for frag in sorted(out.pending):
            samples = out.pending[frag]
            whole = len(samples) >= out.expected.get(frag, 1 << 30)
            if not (whole or final or (current is not None and frag < current)):
                continue
            del out.pending[frag]
            out.written.add(frag)
            self._append(out, samples)
        # Frames come in order: once a later file has a frame, an older one gets nothing more.
        for older in list(self._outs):
            if older is not out and older.file.seq < out.file.seq and (older.pending or older.source_done):
                self._write_ready(older, None, final=True)
        if (out.whole or final and out.source_done and not out.pending) and not out.file.complete:
            self._finish(out)

    def _append(self, out: _Out, samples: list[tuple[Coded, int]]) -> None:
        assert self._enc is not None and self._enc.init is not None
        data = b""
        if out.size == 0:
            data = self._enc.init
        out.frags += 1
        body = fragment(out.frags, [c for c, _ in samples], [d for _, d in samples])
        _write(out.fd, data + body)
        part = hls.Part(out.size + len(data), len(body), sum(d for _, d in samples) / self._timescale,
                        samples[0][0].key)
        with self._cond:
            if out.size == 0:
                out.file.init_length = len(data)
                self._files.append(out.file)
            out.size += len(data) + len(body)
            out.file.parts.append(part)
            self._version += 1
            self._cond.notify_all()

    def _finish(self, out: _Out) -> None:
        os.close(out.fd)
        out.fd = -1
        self._outs.remove(out)
        for pts in [p for p, m in self._meta.items() if m[0] is out]:
            del self._meta[pts]  # frames the decoder never gave back
        with self._cond:
            out.file.complete = True
            self._version += 1
            old = self._files[:-KEPT] if len(self._files) > KEPT else []
            self._files = self._files[len(old):]
            self._cond.notify_all()
        for f in old:
            (self.root / f.name).unlink(missing_ok=True)

    def _close_all(self) -> None:
        for out in getattr(self, "_outs", []):
            if self._board is not None and not out.source_done and out.key:
                self._board.abandon(out.key)  # analytics decodes that one itself
            if out.fd >= 0:
                os.close(out.fd)
                out.fd = -1


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _decoder(track: TrackInit) -> av.VideoCodecContext:
    ctx = av.CodecContext.create(track.codec, "r")
    assert isinstance(ctx, av.video.codeccontext.VideoCodecContext)
    ctx.extradata = track.extradata
    ctx.thread_count = 1  # frame threads would hold frames back: latency, not throughput, matters here
    return ctx


class LiveBlurHub:
    """The blurred live pipelines of one hub: started by a viewer, shared by all viewers of a camera."""

    def __init__(self, store: SegmentStore, root: Path, first_seq: Callable[[int, datetime], int], *,
                 log: logging.Logger, make_blur: Callable[[], FaceBlur] = FaceBlur, lease_s: float = LEASE_S,
                 retry_s: float = 5.0, board: DetectionBoard | None = None) -> None:
        self.store, self.root, self._first_seq, self.log = store, root, first_seq, log
        self._board = board
        self._make_blur, self._lease_s, self._retry_s = make_blur, lease_s, retry_s
        self._pipes: dict[tuple[int, str], tuple[LiveBlur, float]] = {}
        self._guard = threading.Lock()
        self._closed = False

    def watch(self, camera_id: int, rendition: str) -> LiveBlur:
        """The camera's pipeline in ``rendition``, started if none runs; renews its lease."""
        key = (camera_id, rendition)
        with self._guard:
            if self._closed:
                raise RuntimeError("the hub is stopping")
            found = self._pipes.get(key)
            if found is not None:
                pipe, started = found
                if pipe.alive or (pipe.error is not None and time.monotonic() - started < self._retry_s):
                    pipe.renew()
                    return pipe
                pipe.close(0)
            pipe = LiveBlur(self.store, camera_id, rendition, self.root / str(camera_id) / rendition,
                            first_seq=lambda t: self._first_seq(camera_id, t), log=self.log,
                            make_blur=self._make_blur, lease_s=self._lease_s,
                            board=self._board)
            pipe.start()
            self._pipes[key] = (pipe, time.monotonic())
            return pipe

    def running(self) -> list[tuple[int, str]]:
        with self._guard:
            return sorted(k for k, (p, _) in self._pipes.items() if p.alive)

    def close(self) -> None:
        with self._guard:
            self._closed = True
            pipes = [p for p, _ in self._pipes.values()]
        for p in pipes:
            p.close()
