"""Demo video with people in it, made on the spot: an entrance where masked and unmasked visitors walk by.

Every face is one public-domain portrait (Grace Hopper, U.S. Navy photograph, 1984, shipped as
``grace_hopper.jpg`` in matplotlib's sample data), some with a drawn surgical mask, scaled, mirrored and
toned per visitor; bodies, floor and door are drawn. Nothing is downloaded and nothing about real
visitors is in it, so the repository can ship the recipe and anyone can run the demo.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


def portrait(masked: bool = False) -> Image:
    """The portrait's face, forehead to chin (205x230 BGR); ``masked`` draws a pale blue surgical mask."""
    import matplotlib.cbook

    img = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    if img is None:
        raise FileNotFoundError("matplotlib's sample data (grace_hopper.jpg) is missing")
    face: Image = np.ascontiguousarray(img[110:340, 160:365], np.uint8)
    if masked:
        # From the bridge of the nose to below the chin, with pleats and ear loops.
        pts = np.array([[12, 118], [60, 112], [102, 110], [145, 112], [193, 118], [185, 190], [150, 226],
                        [102, 230], [55, 226], [20, 190]], np.int32)
        cv2.fillPoly(face, [pts], (228, 205, 160))
        for y in (140, 165, 190):
            cv2.line(face, (22, y), (183, y), (200, 180, 140), 2)
        cv2.line(face, (12, 118), (0, 95), (235, 235, 235), 2)
        cv2.line(face, (193, 118), (204, 95), (235, 235, 235), 2)
    return face


@dataclass(frozen=True)
class Visitor:
    face: Image  # already scaled
    body_bgr: tuple[int, int, int]
    start_s: float
    duration_s: float
    x_from: float
    x_to: float
    y: float  # top of the face


def _backdrop(width: int, height: int) -> Image:
    """A shop entrance seen by a ceiling camera: wall, glass door, floor tiles in perspective."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (150, 160, 165)
    horizon = int(height * 0.45)
    img[horizon:] = (95, 100, 110)
    for k in range(-12, 13):  # floor tile lines converging on the door
        cv2.line(img, (width // 2 + k * 30, horizon), (width // 2 + k * 260, height), (80, 85, 92), 2)
    for y in np.geomspace(horizon + 6, height, 9).astype(int):
        cv2.line(img, (0, int(y)), (width, int(y)), (80, 85, 92), 2)
    cv2.rectangle(img, (width // 2 - 170, int(height * 0.08)), (width // 2 + 170, horizon), (120, 105, 90), -1)
    cv2.rectangle(img, (width // 2 - 160, int(height * 0.10)), (width // 2 + 160, horizon), (205, 200, 185), -1)
    cv2.line(img, (width // 2, int(height * 0.10)), (width // 2, horizon), (120, 105, 90), 4)
    cv2.putText(img, "CENTRAL MALL", (width // 2 - 150, int(height * 0.06)), cv2.FONT_HERSHEY_SIMPLEX, 1.2,
                (60, 60, 60), 3)
    noise = np.random.default_rng(3).integers(-6, 7, img.shape)
    return np.asarray(np.clip(img.astype(np.int16) + noise, 0, 255), np.uint8)


def visitors(width: int, height: int, seconds: float, seed: int = 1) -> list[Visitor]:
    """A visitor every ~2.5 s, about two in three masked, crossing left-right or right-left."""
    rng = np.random.default_rng(seed)
    bare, masked = portrait(False), portrait(True)
    out: list[Visitor] = []
    t = 0.5
    while t < seconds - 4.0:
        base = masked if rng.random() < 0.65 else bare
        size = int(rng.integers(70, 130))
        face = cv2.resize(base, (round(base.shape[1] * size / base.shape[0]), size), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            face = np.ascontiguousarray(face[:, ::-1])
        face = np.clip(face.astype(np.float32) * float(rng.uniform(0.8, 1.1)), 0, 255).astype(np.uint8)
        left = rng.random() < 0.5
        x_a, x_b = -float(face.shape[1]) * 2, float(width + face.shape[1])
        body = tuple(int(v) for v in rng.integers(30, 200, 3))
        out.append(Visitor(face, (body[0], body[1], body[2]), t, float(rng.uniform(3.0, 4.5)),
                           x_a if left else x_b, x_b if left else x_a, float(rng.uniform(0.22, 0.40)) * height))
        t += float(rng.uniform(2.0, 3.0))
    return out


def _draw(img: Image, v: Visitor, t: float) -> None:
    a = (t - v.start_s) / v.duration_s
    if not 0.0 <= a <= 1.0:
        return
    h, w = img.shape[:2]
    fh, fw = v.face.shape[:2]
    x, y = int(v.x_from + (v.x_to - v.x_from) * a), int(v.y + 6 * np.sin(a * 40))
    cx = x + fw // 2
    cv2.ellipse(img, (cx, y + int(fh * 2.1)), (int(fw * 0.8), int(fh * 1.2)), 0, 0, 360, v.body_bgr, -1)
    cv2.rectangle(img, (cx - fw // 6, y + fh - 4), (cx + fw // 6, y + int(fh * 1.15)), (120, 150, 190), -1)
    a0, b0, a1, b1 = max(0, x), max(0, y), min(w, x + fw), min(h, y + fh)
    if a1 > a0 and b1 > b0:
        img[b0:b1, a0:a1] = v.face[b0 - y:b1 - y, a0 - x:a1 - x]


def write_clip(path: Path, width: int, height: int, fps: int, frames: Iterable[Image], fmt: str = "bgr24") -> Path:
    """Encode ``frames`` as H.264 (keyframe every 2 s) into ``path`` once; later calls find it. Written to
    a side file first, so a killed demo never leaves half a clip under the real name."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(fps * 2)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format=fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path


def entrance_video(path: Path, width: int, height: int, fps: int, seconds: float, seed: int = 1) -> Path:
    """The entrance clip: visitors walking past the door for ``seconds``."""
    if path.exists():
        return path
    bg = _backdrop(width, height)
    people = visitors(width, height, seconds, seed)

    def frames() -> Iterator[Image]:
        for i in range(int(seconds * fps)):
            img = bg.copy()
            for v in people:
                _draw(img, v, i / fps)
            yield img

    return write_clip(path, width, height, fps, frames())
