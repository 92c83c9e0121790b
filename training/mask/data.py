"""Dataset split and CCTV-like degradation shared by ``train.py`` and ``validate.py``.

Pure numpy + OpenCV so it runs in the training venv and in the project venv alike.
The split is by file, stratified by label, with a fixed seed: ``train`` (75 %), ``val`` (10 %, model
selection and thresholds) and ``test`` (15 %, reported figures and the only crops pasted into scenes).
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / ".." / "shared" / "datasets" / "mask-crops"
VIDEOS = REPO / ".." / "shared" / "datasets" / "videos"
LABELS = ("mask", "no_mask")  # index 0, 1 in the classifier output
FOLDERS = {"with_mask": 0, "without_mask": 1}
SEED = 20240601

Image = npt.NDArray[np.uint8]


def split(dataset: Path = DATASET, seed: int = SEED) -> dict[str, list[tuple[Path, int]]]:
    """Stratified by-file split into train/val/test, deterministic for a given seed."""
    out: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    for folder, label in FOLDERS.items():
        files = sorted((dataset / folder).glob("*.jpg"))
        rng = random.Random(f"{seed}-{folder}")
        rng.shuffle(files)
        n_test = round(len(files) * 0.15)
        n_val = round(len(files) * 0.10)
        out["test"] += [(f, label) for f in files[:n_test]]
        out["val"] += [(f, label) for f in files[n_test : n_test + n_val]]
        out["train"] += [(f, label) for f in files[n_test + n_val :]]
    return out


def read_bgr(path: Path) -> Image:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {path}")
    return np.asarray(img, dtype=np.uint8)


def cctv_degrade(img: Image, rng: np.random.Generator, strength: float = 1.0) -> Image:
    """Make a face crop look like a small CCTV face: down-scale to 24-64 px and back, blur, noise,
    JPEG artefacts, brightness/contrast. ``strength`` 0 returns the input unchanged."""
    if strength <= 0:
        return img
    h, w = img.shape[:2]
    out = img
    if rng.random() < 0.85 * strength:
        side = int(rng.integers(24, 65))
        s = side / max(h, w)
        if s < 1:
            small = cv2.resize(out, (max(4, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4 * strength:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    f = out.astype(np.float32)
    if rng.random() < 0.8 * strength:
        alpha = float(rng.uniform(0.6, 1.4))
        beta = float(rng.uniform(-40, 40))
        f = f * alpha + beta
    if rng.random() < 0.3 * strength:
        f = f.mean(axis=2, keepdims=True).repeat(3, axis=2)  # night / IR-like grey
    if rng.random() < 0.6 * strength:
        f = f + rng.normal(0, float(rng.uniform(2, 12)), f.shape)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.7 * strength:
        q = int(rng.integers(20, 70))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if dec is not None:
                out = np.asarray(dec, dtype=np.uint8)
    return out


def video_frames(n: int, seed: int = SEED, videos: Path = VIDEOS) -> list[Image]:
    """``n`` background frames sampled deterministically from the shared CCTV clips."""
    files = sorted([*videos.glob("*.mp4"), *videos.glob("*.avi")])
    if not files:
        raise FileNotFoundError(f"no videos in {videos}")
    rng = np.random.default_rng(seed)
    frames: list[Image] = []
    for i in range(n):
        cap = cv2.VideoCapture(str(files[i % len(files)]))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 100
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(rng.integers(0, max(1, total - 1))))
        ok, frame = cap.read()
        cap.release()
        if not ok or frame is None:
            frame = np.full((288, 384, 3), 120, np.uint8)
        frames.append(np.asarray(frame, dtype=np.uint8))
    return frames
