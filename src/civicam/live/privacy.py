"""Faces blurred in served and exported video: the frame transform, and blurred HLS segments made on demand.

Blurring costs a decode, a detection per frame and an encode, so it is done only for segments somebody
asks for, or is about to (the streams being watched, live/blur_ahead.py), and cached, so every viewer of a
segment shares one transcode.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from civicam.analytics.blur import blur_faces
from civicam.analytics.detections import Detections
from civicam.analytics.faces import FaceDetector, create_detector
from civicam.storage.backend import SegmentStore
from civicam.storage.media import FMP4_OPTIONS, init_length
from civicam.storage.models import Segment

# Privacy errs towards blurring: a lower score than analytics uses, so doubtful faces are hidden too.
BLUR_MIN_SCORE = 0.3
# Detect on every fifth frame (5 per second at 25 fps); see FaceBlur for how the frames between stay covered.
DETECT_EVERY = 5
VERIFY_ROUNDS = 1
# Pixelate each face region to 2x2 cells before smoothing: at 4x4 a blurred head still read as a face to
# the detector in every tested frame, at 2x2 in none.
BLUR_BLOCKS = 2
# Detection works on the frame scaled to 960 px (about 0.18 s a frame on this class of CPU against 0.3 s
# at full 1280x720), and so does the check after blurring, which catches any region still read as a face.
DETECT_MAX_SIDE = 960
VERIFY_MAX_SIDE = 960
CACHE_TTL_S = 3600.0


class FaceBlur:
    """A per-stream frame transform that blurs every detected face.

    Detection runs on every ``every``-th frame (it is the costly part); the frames between are blurred
    with the boxes of the last two detections together, so a face moving between detections stays
    covered. Stateful: make one per stream, export or segment.
    """

    def __init__(self, detector: FaceDetector | None = None, every: int = DETECT_EVERY,
                 verifier: FaceDetector | None = None) -> None:
        self._detector = detector or create_detector("yunet", {"min_score": BLUR_MIN_SCORE,
                                                               "max_side": DETECT_MAX_SIDE})
        self._verifier = verifier or (detector if detector is not None else create_detector(
            "yunet", {"min_score": BLUR_MIN_SCORE, "max_side": VERIFY_MAX_SIDE}))
        self._every = max(1, every)
        self._n = 0
        self._recent: list[Detections] = []

    def frame_array(self, bgr: np.ndarray) -> np.ndarray:
        detecting = self._n % self._every == 0
        self._n += 1
        if detecting:
            found = self._detector.detect(bgr)
            out = self._blur(bgr, [*self._recent[-1:], found])
            # Check the result: a blurred head can still read as a face to a detector; blur again what
            # it still finds, so what leaves the hub has nothing a detector recognises.
            for _ in range(VERIFY_ROUNDS if len(found) else 0):
                again = self._verifier.detect(out)
                if not len(again):
                    break
                found = Detections(np.concatenate([found.boxes, again.boxes]),
                                   np.concatenate([found.scores, again.scores]))
                out = self._blur(out, [again])
            self._recent = [*self._recent[-1:], found]
            return out
        return self._blur(bgr, self._recent)

    @staticmethod
    def _blur(bgr: np.ndarray, sets: list[Detections]) -> np.ndarray:
        boxes = np.concatenate([d.boxes for d in sets]) if sets else np.zeros((0, 4), np.float32)
        if not len(boxes):
            return bgr
        return blur_faces(bgr, Detections(boxes, np.ones(len(boxes), np.float32)), blocks=BLUR_BLOCKS)

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        out = av.VideoFrame.from_ndarray(self.frame_array(frame.to_ndarray(format="bgr24")), format="bgr24")
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
    tmp = dest.with_suffix(".part")
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
            blurred = blur(frame)
            blurred.pict_type = av.video.frame.PictureType.NONE
            for packet in ost.encode(blurred.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in ost.encode():
            out.mux(packet)
    os.replace(tmp, dest)
    return BlurredSegment(dest, _init(dest))


def _init(path: Path) -> int:
    size = init_length(str(path))
    if size == 0:
        raise ValueError(f"{path.name} has no fragment")
    return size


class _Making:
    """A segment's blurring in progress: the lock its maker holds, and how many requests wait on it."""

    def __init__(self, camera_id: int) -> None:
        self.camera_id = camera_id
        self.lock = threading.Lock()
        self.users = 0


class BlurredCache:
    """Blurred copies of segments under ``root``, made once per segment however many viewers ask.

    Concurrent requests for one segment share one transcode: the first makes it, the others wait on its
    lock and then find the file (a player's request and blurring ahead, live/blur_ahead.py, included).
    """

    def __init__(self, root: Path, store: SegmentStore, make_blur: Callable[[], FaceBlur] = FaceBlur) -> None:
        self.root, self.store, self._make_blur = root, store, make_blur
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
                made = transcode_blurred(self.store.local_path(seg.path), dest, self._make_blur())
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
