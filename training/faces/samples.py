"""Training samples for the face detector: mask-scenes photos and composed CCTV scenes, CCTV-augmented.

Pure numpy + OpenCV (no torch) so that ``evaluate.py`` can read the same annotations in the project venv.
Labels: 1 face without mask, 2 masked face, 3 mask worn incorrectly (trained as "some face", either class),
-1 ignore (cut by the crop edge or too small to learn from).
"""

from __future__ import annotations

import random
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "training" / "mask"))
from data import read_bgr, split, video_frames  # noqa: E402
from scenes import compose  # noqa: E402

SCENES = REPO / ".." / "shared" / "datasets" / "mask-scenes"
NAMES = {"without_mask": 1, "with_mask": 2, "with_incorrect_mask": 3}
SEED = 20261201
Image = npt.NDArray[np.uint8]


@dataclass
class Sample:
    image: Image  # BGR, the network's input size
    boxes: npt.NDArray[np.float32]  # (G, 4) xyxy pixels of ``image``
    labels: npt.NDArray[np.int64]  # (G,) see module docstring


def read_annotation(name: str, root: Path = SCENES) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    tree = ET.parse(root / "annotations" / f"{name}.xml")
    boxes, labels = [], []
    for obj in tree.getroot().iter("object"):
        bb = obj.find("bndbox")
        label = NAMES.get(obj.findtext("name", ""))
        if bb is None or label is None:
            continue
        boxes.append([float(bb.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax")])
        labels.append(label)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def scene_split(root: Path = SCENES, seed: int = SEED) -> dict[str, list[str]]:
    """``train`` and ``dev`` (a fixed 10 % of ``train.txt``, for choosing runtime settings); ``val`` is
    ``val.txt`` unchanged, never used in training or selection."""
    train = (root / "train.txt").read_text().split()
    val = (root / "val.txt").read_text().split()
    shuffled = sorted(train)
    random.Random(seed).shuffle(shuffled)
    n_dev = len(shuffled) // 10
    return {"train": sorted(shuffled[n_dev:]), "dev": sorted(shuffled[:n_dev]), "val": val}


def photometric(img: Image, rng: np.random.Generator) -> Image:
    """Low light, grey (IR at night), blur, sensor noise, JPEG: what a CCTV picture does to a face."""
    f = img.astype(np.float32)
    if rng.random() < 0.5:
        f = f * float(rng.uniform(0.6, 1.3)) + float(rng.uniform(-30, 30))
    if rng.random() < 0.25:  # low light: dark, gamma-lifted, noisy
        f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** float(rng.uniform(1.3, 2.2)) * float(rng.uniform(0.4, 0.8))
    if rng.random() < 0.15:
        f = f.mean(axis=2, keepdims=True).repeat(3, axis=2)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, 1.3)))
    if rng.random() < 0.4:
        noisy = out.astype(np.float32) + rng.normal(0, float(rng.uniform(2, 10)), out.shape)
        out = np.clip(noisy, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 85))])
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if dec is not None:
            out = np.asarray(dec, np.uint8)
    return out


def _face_width(rng: np.random.Generator) -> float:
    """Target face width at the input, log-uniform within three bands: 7-24 px (16-48 px in a 1280x720
    frame seen at half size) 40 %, 24-96 px 40 %, 96-300 px 20 % (close-ups, which the band above the
    largest prior must not forget)."""
    band = rng.random()
    lo, hi = (7, 24) if band < 0.4 else (24, 96) if band < 0.8 else (96, 300)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _place(img: Image, boxes: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], scale: float,
           size: tuple[int, int], rng: np.random.Generator, focus: int, backdrop: Image) -> Sample:
    """Scale the image, cut a ``size`` window around face ``focus`` (over a CCTV ``backdrop`` where the
    photo does not reach: real negatives instead of flat grey), keep the boxes."""
    w, h = size
    squash = float(rng.uniform(0.75, 1.0)) if rng.random() < 0.2 else 1.0  # seen from above
    sx, sy = scale, scale * squash
    ih, iw = img.shape[:2]
    nw, nh = max(1, round(iw * sx)), max(1, round(ih * sy))
    scaled = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    b = boxes * np.array([sx, sy, sx, sy], np.float32)
    if len(b):
        fx1, fy1, fx2, fy2 = b[focus]
        x0 = float(rng.uniform(min(fx2 - w, fx1), max(fx2 - w, fx1)))
        y0 = float(rng.uniform(min(fy2 - h, fy1), max(fy2 - h, fy1)))
    else:
        x0, y0 = float(rng.uniform(0, max(0, nw - w))), float(rng.uniform(0, max(0, nh - h)))
    x0 = int(np.clip(x0, min(0, nw - w), max(0, nw - w)))
    y0 = int(np.clip(y0, min(0, nh - h), max(0, nh - h)))
    # Blurred: the clips' own passers-by have unlabelled faces that must not be learnt as background.
    canvas = np.array(cv2.GaussianBlur(cv2.resize(backdrop, (w, h)), (0, 0), 2.5), np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(nw, x0 + w), min(nh, y0 + h)
    canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = scaled[sy0:sy1, sx0:sx1]
    b = b - np.array([x0, y0, x0, y0], np.float32)
    area = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), 1)
    clipped = b.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0, w)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0, h)
    inside = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), 1) / np.maximum(area, 1e-6)
    keep = inside > 0.05
    lab = labels.copy()
    small = (clipped[:, 2] - clipped[:, 0]) < 5
    lab[(inside < 0.6) | small] = -1
    return Sample(canvas, clipped[keep], lab[keep])


class Generator:
    """Endless, seeded stream of training samples of one input size."""

    def __init__(self, size: tuple[int, int], seed: int = SEED, composed_share: float = 0.3) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.composed_share = composed_share
        names = scene_split()["train"]
        self.scenes = [((SCENES / "images" / f"{n}.jpg").read_bytes(), *read_annotation(n)) for n in names]
        self.crops = [(read_bgr(p), lab) for p, lab in split()["train"]]  # mask-crops train split only
        self.backgrounds = video_frames(240, seed)

    def scene(self) -> Sample:
        data, boxes, labels = self.scenes[int(self.rng.integers(len(self.scenes)))]
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if self.rng.random() < 0.5:
            img = np.ascontiguousarray(img[:, ::-1])
            boxes = boxes.copy()
            boxes[:, [0, 2]] = img.shape[1] - boxes[:, [2, 0]]
        if len(boxes):
            focus = int(self.rng.integers(len(boxes)))
            fw = float(boxes[focus, 2] - boxes[focus, 0])
            scale = float(np.clip(_face_width(self.rng) / max(fw, 1.0), 0.05, 2.5))
        else:
            focus, scale = 0, float(self.rng.uniform(0.4, 1.0))
        backdrop = self.backgrounds[int(self.rng.integers(len(self.backgrounds)))]
        return _place(np.asarray(img, np.uint8), boxes, labels, scale, self.size, self.rng, focus, backdrop)

    def composed(self) -> Sample:
        """Held-out-free CCTV scene: a clip frame at the input size, 2-10 train-split mask crops pasted."""
        w, h = self.size
        bg = self.backgrounds[int(self.rng.integers(len(self.backgrounds)))]
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
        if self.rng.random() < 0.5:
            bg = np.ascontiguousarray(bg[:, ::-1])
        n = int(self.rng.integers(2, 11))
        picks = [self.crops[int(i)] for i in self.rng.integers(0, len(self.crops), n)]
        # crops are height-led; the composed scenes keep to CCTV sizes (no close-ups over a clip frame)
        sizes = [max(6, round(min(_face_width(self.rng), 120.0) * 1.15)) for _ in range(n)]
        scene = compose(bg, picks, sizes, self.rng, "train")
        boxes = np.asarray([f.box for f in scene.faces], np.float32).reshape(-1, 4)
        labels = np.asarray([2 if f.label == 0 else 1 for f in scene.faces], np.int64)
        small = (boxes[:, 2] - boxes[:, 0]) < 5
        labels[small] = -1
        return Sample(scene.image, boxes, labels)

    def __next__(self) -> Sample:
        s = self.composed() if self.rng.random() < self.composed_share else self.scene()
        return Sample(photometric(s.image, self.rng), s.boxes, s.labels)

    def __iter__(self) -> Generator:
        return self
