"""Faces blurred in served and exported video: the frame transform, and blurred HLS segments made on demand.

Blurring costs a decode, a detection per frame and an encode, so it is done only for segments somebody
asks for (playback; the live view is blurred as it is recorded, live/blurred_live.py), and cached, so
every viewer of a segment shares one transcode.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, cast

import av
import numpy as np

from civicam.analytics.blur import blur_regions_yuv420
from civicam.analytics.detections import Detections
from civicam.analytics.faces import BLUR_MIN_SCORE, FaceDetector, create_detector
from civicam.live import planes as yuv
from civicam.live.cover import HOLD_INTERVALS, Coverage, backward_cover, inside_share
from civicam.live.cover import padded as _padded
from civicam.storage.backend import SegmentStore
from civicam.storage.media import FMP4_OPTIONS, init_length
from civicam.storage.models import Segment

# Detect on every fifth frame (5 per second at 25 fps); the frames between are covered by looking ahead.
DETECT_EVERY = 5
VERIFY_ROUNDS = 1
# A check's box with at least this share of its area inside one already blurred region is not a new face.
BLOB_SHARE = 0.5
# Average each face region down to 2x2 cells and stretch it back smoothly: at 4x4 a blurred head still read
# as a face to the detector in every tested frame, at 2x2 in none.
BLUR_BLOCKS = 2
# Faces are found on the frame scaled to this (the detector's own input size: no second resize).
DETECT_SIDE = 640
CACHE_TTL_S = 3600.0
# Video blurred whole (a segment for playback or a relay, an export) can wait for later detections: faces
# found only later are blurred backwards too (0.08 % -> 0.01 % of true boxes >= 24 px left recognisable on
# bench/privacy.py's 40 clips). The live view does not wait (its latency goal).
WHOLE_LOOK_AHEAD = HOLD_INTERVALS


def whole_blur() -> FaceBlur:
    """The blur for video blurred whole (playback segments, relays, exports)."""
    return FaceBlur(look_ahead=WHOLE_LOOK_AHEAD)


class FaceBlur:
    """A per-stream frame transform that blurs every detected face (civicam.live.transform.FrameTransform).

    Detection runs on every ``every``-th frame (it is the costly part), on the frame scaled to
    ``detect_side``. The frames between are held back until the next detection,
    then blurred with ``motion_cover`` of the detections on either side: a face moving between two
    detections stays inside its blur, and a face that appears is blurred from the frames before it was
    first found; a detection frame waits for the next detection too, so a face missed once is still
    covered by the detections on either side; a face the detector stops finding while still in view (half
    out of the frame, small) stays blurred along its last motion for a few intervals
    (``live/cover.Coverage``). The delay is ``every`` frames. Frames are blurred in their
    own YUV 4:2:0 planes (no colour conversion of the full frame). Stateful: one per stream.
    """

    def __init__(self, detector: FaceDetector | None = None, every: int = DETECT_EVERY,
                 verifier: FaceDetector | None = None, detect_side: int = DETECT_SIDE,
                 look_ahead: int = 0) -> None:
        self._detector = detector or create_detector(options={"min_score": BLUR_MIN_SCORE, "side": detect_side})
        self._verifier = verifier or self._detector
        self._every = max(1, every)
        self._side = detect_side
        self._n = 0
        self._cover = Coverage()  # the last detection's boxes (frame pixels), the faces lost since
        self._held: list[tuple[np.ndarray, av.VideoFrame]] = []
        # ``look_ahead`` intervals more are held back, so that faces found only later are blurred backwards
        # too (live/cover.backward_cover): for a segment blurred whole, which starts with no detections
        # before it. Costs the frames' memory (``look_ahead`` x ``every`` frames), not CPU.
        self._ahead = max(0, look_ahead)
        self._pending: list[tuple[list[tuple[np.ndarray, av.VideoFrame]], np.ndarray]] = []
        self._detections: list[np.ndarray] = []  # at the start of the oldest pending interval, then each end
        self._frame: tuple[int, int] | None = None
        self._size: tuple[int, int] | None = None  # the size frames go out at (None: the source's)
        # Called with each frame's own detection (frame pixels), for whoever would detect it again
        # (analytics of the same segment: analytics/shared.py).
        self.on_detect: Callable[[av.VideoFrame, Detections], None] | None = None

    def _find(self, planes: np.ndarray, frame: av.VideoFrame, detector: FaceDetector,
              source: bool = True) -> np.ndarray:
        """Boxes (frame pixels) ``detector`` finds in ``planes``: the frame's own picture (``source``) or
        the blurred one. FFmpeg's scaler makes the detector's input: OpenCV's (area, then I420 -> BGR) is
        4x cheaper, but then 1.7 % of the true face boxes >= 32 px were left recognisable (0.0 % with
        FFmpeg's) on the privacy clip (docs/benchmarks.md, "Camera wall")."""
        s = min(1.0, self._side / max(frame.width, frame.height))
        w, h = max(2, round(frame.width * s)), max(2, round(frame.height * s))
        picture = frame if source else _like(planes, frame)
        small = picture.reformat(width=w, height=h, format="bgr24").to_ndarray()
        faces = detector.detect(np.ascontiguousarray(small, np.uint8))
        boxes = np.asarray(faces.boxes * np.array([frame.width / w, frame.height / h] * 2, np.float32), np.float32)
        if source and self.on_detect is not None:
            self.on_detect(frame, Detections(boxes, faces.scores, faces.labels, faces.mask_probs))
        return boxes

    def _detect(self, planes: np.ndarray, frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray]:
        """(boxes found, the planes blurred with them and the previous detection's), checked again."""
        found = self._find(planes, frame, self._detector)
        blurred = np.concatenate([_padded(found), _padded(self._cover.last)])
        out = blur_regions_yuv420(planes, blurred, BLUR_BLOCKS)
        # Check the result: blur what a detector still finds, so what leaves the hub has nothing a
        # detector recognises (it also catches faces the first detection missed). A box lying mostly in
        # what is already blurred is the smooth blob itself (at the blur's low threshold a blob reads as a
        # face): taking it for a face grew the blur from one check to the next until it covered most of
        # the frame (bench/privacy.py: 61 % of one clip's pixels for two faces), so it is left out.
        for _ in range(VERIFY_ROUNDS if len(found) else 0):
            again = self._find(out, frame, self._verifier, source=False)
            again = again[inside_share(again, blurred) < BLOB_SHARE]
            if not len(again):
                break
            found = np.concatenate([found, again])
            out = blur_regions_yuv420(out, _padded(again), BLUR_BLOCKS)
        return found, out

    def push(self, frame: av.VideoFrame, size: tuple[int, int] | None = None) -> list[av.VideoFrame]:
        """Blurred frames ready to go out (in order), scaled to ``size`` (even sides) if given: a lower
        rendition is blurred at the source's size and only then scaled (docs/benchmarks.md)."""
        self._size = size
        planes = frame.to_ndarray(format="yuv420p")
        detecting = self._n % self._every == 0
        self._n += 1
        if not detecting:
            self._held.append((planes, frame))
            return []
        return self._anchor(planes, frame)

    def flush(self) -> list[av.VideoFrame]:
        """The frames held back: the last of them is detected too, so they still have a look-ahead."""
        ready = self._anchor(*self._held.pop()) if len(self._held) > 1 else []
        ready += self._release(0)
        # The last detection frame, with its own faces and those lost before it.
        ready += self._blurred(self._held, self._cover.pending())
        self._held = []
        return ready

    def _anchor(self, planes: np.ndarray, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Detect on this frame; release the frames held since the previous detection frame (that one
        included) blurred over the motion between the two, and over where faces found before but not now
        have gone (live/cover.py); hold this one until the next."""
        found, out = self._detect(planes, frame)
        before = self._cover.last
        regions = self._cover.step(found, (frame.width, frame.height))
        held, self._held = self._held, [(out, frame)]
        if not self._ahead:
            return self._blurred(held, regions)
        if not self._detections:
            self._detections.append(before)
        self._detections.append(found)
        self._pending.append((held, regions))
        self._frame = (frame.width, frame.height)
        return self._release(self._ahead)

    def _release(self, keep: int) -> list[av.VideoFrame]:
        """Pending intervals beyond the newest ``keep``, blurred with their regions and the backward ones."""
        ready: list[av.VideoFrame] = []
        while len(self._pending) > keep:
            held, regions = self._pending.pop(0)
            back = backward_cover(self._detections[:HOLD_INTERVALS + 2], self._frame)
            self._detections.pop(0)
            ready += self._blurred(held, np.concatenate([regions, back]))
        if not self._pending:
            self._detections = []
        return ready

    def _blurred(self, held: list[tuple[np.ndarray, av.VideoFrame]], regions: np.ndarray) -> list[av.VideoFrame]:
        return [_like(blur_regions_yuv420(p, regions, BLUR_BLOCKS) if len(regions) else p, f, self._size)
                for p, f in held]


def _like(planes: np.ndarray, frame: av.VideoFrame, size: tuple[int, int] | None = None) -> av.VideoFrame:
    if size is not None and size != (frame.width, frame.height):
        planes = yuv.scale(planes, *size)
    out = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


@dataclass(frozen=True)
class BlurredSegment:
    path: Path
    init_bytes: int


def transcode_blurred(src: str, dest: Path, blur: FaceBlur) -> BlurredSegment:
    """Decode ``src``, blur faces in every frame, encode H.264 into an fMP4 with the original timestamps.

    Keeping the source's time base and timestamps keeps a blurred segment on the same HLS timeline as the
    original, so the playlist is the same one either way.
    """
    # Named per process and call: two API processes sharing a cache folder may blur one segment at once,
    # and each must write a file of its own before the atomic rename.
    tmp = dest.with_name(f"{dest.stem}.{os.getpid()}.{secrets.token_hex(4)}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The recorder's fMP4 options: without frag_discont and avoid_negative_ts=disabled the muxer restarts
    # every file's decode times at 0, and a player puts each blurred segment over the first one.
    with av.open(src) as inp, av.open(str(tmp), "w", format="mp4", options=FMP4_OPTIONS) as out:
        ist = inp.streams.video[0]
        rate = ist.average_rate or Fraction(25)
        ost = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "tune": "zerolatency",
                                                            "crf": "23", "g": "600"})
        ost.width, ost.height, ost.pix_fmt = ist.codec_context.width, ist.codec_context.height, "yuv420p"
        tb = ist.time_base or Fraction(1, 90000)
        ost.time_base = tb
        ost.codec_context.time_base = tb
        for frame in inp.decode(ist):
            for blurred in blur.push(frame):
                _encode(out, ost, blurred)
        for blurred in blur.flush():
            _encode(out, ost, blurred)
        for packet in ost.encode():
            out.mux(packet)
    os.replace(tmp, dest)
    return BlurredSegment(dest, _init(dest))


def _encode(out: av.container.OutputContainer, ost: av.video.stream.VideoStream, frame: av.VideoFrame) -> None:
    frame.pict_type = av.video.frame.PictureType.NONE
    for packet in ost.encode(frame.reformat(format="yuv420p")):
        out.mux(packet)


def _init(path: Path) -> int:
    size = init_length(str(path))
    if size == 0:
        raise ValueError(f"{path.name} has no fragment")
    return size


class SharedCopies(Protocol):
    """A store that keeps copies derived from segments for every process (storage/s3.py)."""

    def get_derived(self, kind: str, rel: str, dest: Path) -> bool: ...
    def put_derived(self, kind: str, rel: str, src: Path) -> None: ...


class _Making:
    """A segment's blurring in progress: the lock its maker holds, and how many requests wait on it."""

    def __init__(self, camera_id: int) -> None:
        self.camera_id = camera_id
        self.lock = threading.Lock()
        self.users = 0


class BlurredCache:
    """Blurred copies of segments under ``root``, made once per segment however many viewers ask.

    Concurrent requests for one segment share one transcode: the first makes it, the others wait on its
    lock and then find the file.
    """

    def __init__(self, root: Path, store: SegmentStore, make_blur: Callable[[], FaceBlur] | None = None) -> None:
        self.root, self.store = root, store
        self._make_blur: Callable[[], FaceBlur] = make_blur or whole_blur
        self._making: dict[int, _Making] = {}
        self._guard = threading.Lock()

    def path(self, seg: Segment) -> Path:
        return self.root / f"{seg.camera_id}" / f"{seg.id}.mp4"

    def ready(self, seg: Segment) -> bool:
        """Whether the blurred copy exists (a request for it is answered without a transcode)."""
        return self.path(seg).exists()

    def making(self, seg: Segment) -> bool:
        """Whether somebody is blurring the segment now (a request for it waits for that transcode)."""
        with self._guard:
            entry = self._making.get(seg.id)
            return entry is not None and entry.lock.locked()

    def busy(self, camera_id: int) -> bool:
        """Whether any segment of the camera is being blurred now."""
        with self._guard:
            return any(e.camera_id == camera_id and e.lock.locked() for e in self._making.values())

    def get(self, seg: Segment) -> BlurredSegment:
        dest = self.path(seg)
        with self._guard:
            entry = self._making.setdefault(seg.id, _Making(seg.camera_id))
            entry.users += 1
        try:
            with entry.lock:
                if dest.exists():
                    return BlurredSegment(dest, _init(dest))
                shared = cast(SharedCopies, self.store) if hasattr(self.store, "get_derived") else None
                if shared is not None and shared.get_derived("blurred", seg.path, dest):
                    return BlurredSegment(dest, _init(dest))  # blurred by another process of the tier
                made = transcode_blurred(self.store.local_path(seg.path), dest, self._make_blur())
                if shared is not None:
                    try:
                        shared.put_derived("blurred", seg.path, dest)
                    except Exception:  # noqa: BLE001  serving the copy made here matters more than sharing it
                        logging.getLogger(__name__).warning("sharing blurred segment %s failed", seg.id,
                                                            exc_info=True)
        finally:
            # Forgotten only when nobody waits on it, so a failed transcode is not run twice at once.
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    self._making.pop(seg.id, None)
        self.prune()
        return made

    def prune(self, max_age_s: float = CACHE_TTL_S) -> int:
        """Remove blurred copies nobody has needed for a while; they can always be made again."""
        cutoff, removed = time.time() - max_age_s, 0
        for path in self.root.glob("*/*.mp4"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
