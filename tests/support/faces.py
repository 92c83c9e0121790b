"""Faces for the privacy and analytics tests, and video in which every face's true box is known.

Two sources. Always: a public-domain portrait that ships inside an installed package (matplotlib's
sample ``grace_hopper.jpg``, a U.S. Navy photograph; civicam.demo_media.portrait), bare and with a drawn
surgical mask, so that a
clone with nothing beside it still exercises detection, blurring and privacy. Where ``../shared`` is
beside the repo: the mask-crops dataset (real masked and unmasked faces), through the suite's one gate
(``require``): skipped on a laptop without it, a failure under CI.

The privacy oracle (``recognisable``) compares what the hub served with the source frame inside each
true box; no face detector takes part in it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from civicam.demo_media import portrait
from civicam.domain.segments import partial_path, published_path
from civicam.storage.backend import SegmentStore
from civicam.storage.fragments import scan_file
from civicam.storage.media import FMP4_OPTIONS
from support.services import require

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CROPS = SHARED / "datasets" / "mask-crops"
WITHOUT_MASK = CROPS / "without_mask"
WITH_MASK = CROPS / "with_mask"
W, H, FPS = 1280, 720, 25
Image = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]


def shared_available() -> bool:
    return WITHOUT_MASK.is_dir() and WITH_MASK.is_dir()


def require_shared() -> None:
    require(shared_available(), "shared/datasets/mask-crops beside the repo")


def faces(count: int, size: int = 180, masked: bool = False, source: str = "auto") -> list[Image]:
    """``count`` faces ``size`` px high. ``source``: "dataset" (needs ../shared), "portrait", or "auto"
    (the dataset where it is here, else the portrait, flipped and toned so that they are not identical)."""
    if source == "dataset" or (source == "auto" and shared_available()):
        require_shared()
        files = sorted((WITH_MASK if masked else WITHOUT_MASK).glob("*.jpg"))
        step = max(1, len(files) // max(count, 1))
        crops = [cv2.imread(str(p)) for p in files[::step][:count]]
    else:
        base = portrait(masked)
        crops = [np.ascontiguousarray(base[:, ::-1]) if i % 2 else
                 np.clip(base.astype(np.int16) + (i * 7) % 30 - 15, 0, 255).astype(np.uint8) for i in range(count)]
    return [cv2.resize(c, (round(c.shape[1] * size / c.shape[0]), size), interpolation=cv2.INTER_AREA)
            for c in crops]


def visible_faces(count: int, size: int = 180) -> list[Image]:
    """Unmasked faces, square, as the analytics tests walk them across a corridor."""
    return [cv2.resize(f, (size, size)) for f in faces(count, size)]


@dataclass(frozen=True)
class Walker:
    """A face moving at constant speed: its true box in every frame is known."""

    face: Image
    x: float
    y: float
    vx: float  # pixels per frame
    vy: float

    def box(self, i: int) -> Box:
        h, w = self.face.shape[:2]
        x, y = round(self.x + self.vx * i), round(self.y + self.vy * i)
        return x, y, x + w, y + h


def background(seed: int = 7) -> Image:
    """A textured, CCTV-grey backdrop (noise at two scales, so an encoder spends bits on it)."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.integers(70, 160, (18, 32, 3)).astype(np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    return np.clip(coarse.astype(np.int16) + rng.integers(-12, 12, (H, W, 3)), 0, 255).astype(np.uint8)


def render(walkers: list[Walker], i: int, bg: Image) -> tuple[Image, list[Box]]:
    img = bg.copy()
    boxes = []
    for w in walkers:
        x1, y1, x2, y2 = w.box(i)
        a, b, c, d = max(0, x1), max(0, y1), min(W, x2), min(H, y2)
        if c - a < 2 or d - b < 2:
            continue
        img[b:d, a:c] = w.face[b - y1:d - y1, a - x1:c - x1]
        boxes.append((a, b, c, d))
    return img, boxes


def walkers_clip(path: Path, walkers: list[Walker], seconds: float = 2.0, first_frame: int = 0,
                 backdrop: Image | None = None) -> list[list[Box]]:
    """Write fragmented MP4 the way the recorder writes it; returns every frame's true face boxes.

    ``first_frame``: where in the walk (and on the timeline) the clip begins, for the next segment of a
    session: the recorder's segments continue one timeline, so its frames do not start at 0.
    ``backdrop``: a W x H picture behind the faces (default: ``background()``)."""
    bg = background() if backdrop is None else backdrop
    truth: list[list[Box]] = []
    with av.open(str(path), "w", format="mp4", options=FMP4_OPTIONS) as out:
        st = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": str(FPS)})
        st.width, st.height, st.pix_fmt, st.time_base = W, H, "yuv420p", Fraction(1, 90000)
        for i in range(first_frame, first_frame + int(FPS * seconds)):
            img, boxes = render(walkers, i, bg)
            truth.append(boxes)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i * 90000 // FPS, Fraction(1, 90000)
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return truth


def face_clip(path: Path, crops: list[Image], seconds: float = 2.0, step_px: int = 4, first_frame: int = 0) -> None:
    """People walking slowly across a corridor (the analytics tests' clip)."""
    walkers = [Walker(c, 150 + k * 550, 180 + k * 120, step_px, 0) for k, c in enumerate(crops)]
    walkers_clip(path, walkers, seconds, first_frame)


def _detail(gray: npt.NDArray[np.float32], size: float) -> npt.NDArray[np.float32]:
    """What makes a face recognisable: structure finer than an eighth of the face."""
    return np.asarray(gray - cv2.GaussianBlur(gray, (0, 0), max(1.0, size / 8)), np.float32)


def recognisable(source: Image, served: Image, box: Box, threshold: float = 0.35,
                 min_energy: float = 0.05) -> bool:
    """Whether the face in ``box`` is still recognisable in ``served``: the fine detail of the region
    correlates with the source's (normalised cross-correlation >= ``threshold``) and is still there (its
    energy at least ``min_energy`` of the source's). A re-encoded but unblurred face scores about 0.9 with
    most of its energy; pixelated and smoothed, about 0. The energy floor matters for a face smoothed flat:
    the faint curvature left by the smoothing (0.1 % of the source's detail energy, seen on a 17x25 px
    face) can still correlate with the source's coarse shading above the threshold, and correlation alone
    called that face recognisable."""
    x1, y1, x2, y2 = box
    a = cv2.cvtColor(source[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(np.float32)
    b = cv2.cvtColor(served[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(np.float32)
    da, db = _detail(a, y2 - y1), _detail(b, y2 - y1)
    ea, eb = float((da * da).sum()), float((db * db).sum())
    denom = float(np.sqrt(ea * eb))
    return denom > 0 and eb >= min_energy * ea and float((da * db).sum()) / denom >= threshold


def decode(path_or_bytes: Path | bytes) -> list[Image]:
    import io

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with av.open(src) as c:
        return [np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in c.decode(video=0)]


def share_recognisable(sources: list[Image], served: list[Image], truth: list[list[Box]],
                       min_px: int = 24) -> tuple[float, int]:
    """(share of true face boxes at least ``min_px`` high left recognisable, how many boxes were checked)."""
    checked = found = 0
    for src, out, boxes in zip(sources, served, truth, strict=True):
        for box in boxes:
            if box[3] - box[1] >= min_px and box[2] - box[0] >= 8:
                checked += 1
                found += recognisable(src, out, box)
    return (found / checked if checked else float("nan")), checked


def record_live(store: SegmentStore, clip: Path, start: datetime, after: timedelta, done: threading.Event,
                camera_id: int = 1) -> None:
    """Stand in for the recorder: write ``clip`` as camera ``camera_id``'s segment in progress at ``start``,
    a fragment at a time, publish it, then begin the next one ``after`` later (a new connection: its
    timeline starts again), so the blurred live pipeline has all of the first segment to blur, part by
    part, as it is written. Two fragments of the next segment: the first of them becomes a blurred part
    once the second's frames release the ones the blur holds, and only then is the first segment listed
    whole (never as the playlist's last line: hls.js misreads that)."""
    data = clip.read_bytes()
    index = scan_file(str(clip))
    for seg_start, frags in ((start, index.fragments), (start + after, index.fragments[:2])):
        rel = partial_path(camera_id, seg_start)
        with open(store.spool(rel), "wb", buffering=0) as fh:
            fh.write(data[:index.init_length])
            for f in frags:
                fh.write(data[f.offset:f.offset + f.length])
                done.wait(0.3)  # a recorder's pace; not synchronisation: the reader follows the file
        if seg_start == start:
            store.publish(rel, published_path(rel))
