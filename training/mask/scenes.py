"""Compose whole CCTV-like scenes with labelled faces from *held-out* (test split) crops.

Scenes are generated on the fly from a fixed seed; nothing is committed. Two kinds:
``hd``: a frame of a shared CCTV clip up-scaled to 1280x720, faces 24-200 px high;
``native``: the frame at its own size (384x288 / 480x360), faces 24-80 px high.
Each face gets a small rotation, an optional vertical squash (seen from above), a flip, CCTV-like
crop degradation, a feathered paste; then the whole scene is blurred, noised and JPEG-compressed.

Command line (writes PNG scenes + labels.json, used to compare detector packages in throwaway venvs):
    python training/mask/scenes.py --out /tmp/civicam-scenes --hd 60 --native 30
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from data import SEED, Image, cctv_degrade, read_bgr, split, video_frames

BUCKETS = ((24, 40), (40, 80), (80, 200))


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive)
    label: int  # 0 mask, 1 no_mask


@dataclass
class Scene:
    image: Image
    faces: list[Face]
    kind: str


def _prepare_face(crop: Image, height: int, rng: np.random.Generator) -> tuple[Image, np.ndarray]:
    """Return (bgr patch, alpha float32 0..1) of a face about ``height`` px high."""
    crop = cctv_degrade(crop, rng, 0.5)
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    h, w = crop.shape[:2]
    squash = float(rng.uniform(0.7, 1.0)) if rng.random() < 0.35 else 1.0  # seen from above
    sx = height / h
    nw, nh = max(6, round(w * sx)), max(6, round(h * sx * squash))
    patch = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR)
    alpha = np.ones((nh, nw), np.float32)
    f = max(1, round(0.06 * min(nw, nh)))
    alpha[:f, :] *= np.linspace(0, 1, f)[:, None]
    alpha[-f:, :] *= np.linspace(1, 0, f)[:, None]
    alpha[:, :f] *= np.linspace(0, 1, f)[None, :]
    alpha[:, -f:] *= np.linspace(1, 0, f)[None, :]
    angle = float(rng.uniform(-15, 15))
    if abs(angle) > 1:
        c = (nw / 2, nh / 2)
        m = cv2.getRotationMatrix2D(c, angle, 1.0)
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        bw, bh = int(nh * sin + nw * cos), int(nh * cos + nw * sin)
        m[0, 2] += bw / 2 - c[0]
        m[1, 2] += bh / 2 - c[1]
        patch = cv2.warpAffine(patch, m, (bw, bh), borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(alpha, m, (bw, bh))
    return np.asarray(patch, np.uint8), alpha


def _tight_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha > 0.5)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def compose(background: Image, crops: list[tuple[Image, int]], sizes: list[int], rng: np.random.Generator,
            kind: str) -> Scene:
    img = background.astype(np.float32)
    H, W = img.shape[:2]
    faces: list[Face] = []
    occupied: list[tuple[int, int, int, int]] = []
    for (crop, label), size in zip(crops, sizes, strict=False):
        patch, alpha = _prepare_face(crop, size, rng)
        ph, pw = patch.shape[:2]
        if ph >= H or pw >= W:
            continue
        for _ in range(30):
            x, y = int(rng.integers(0, W - pw)), int(rng.integers(0, H - ph))
            bx1, by1, bx2, by2 = _tight_box(alpha)
            box = (x + bx1, y + by1, x + bx2, y + by2)
            m = max(4, size // 4)
            if all(box[2] + m < o[0] or o[2] + m < box[0] or box[3] + m < o[1] or o[3] + m < box[1]
                   for o in occupied):
                a = alpha[:, :, None]
                img[y:y + ph, x:x + pw] = img[y:y + ph, x:x + pw] * (1 - a) + patch.astype(np.float32) * a
                occupied.append(box)
                faces.append(Face(box, label))
                break
    out = np.clip(img, 0, 255).astype(np.uint8)
    # whole-scene CCTV degradation
    if rng.random() < 0.6:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.2)))
    noisy = out.astype(np.float32) + rng.normal(0, float(rng.uniform(1, 6)), out.shape)
    out = np.clip(noisy, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 80))])
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if dec is not None:
        out = np.asarray(dec, np.uint8)
    return Scene(out, faces, kind)


def make_scenes(n_hd: int, n_native: int, seed: int = SEED, part: str = "test") -> list[Scene]:
    """``part`` "test" for reported figures; "val" to tune runtime settings without touching test."""
    rng = np.random.default_rng(seed + 1)
    test = split()[part]
    backgrounds = video_frames(n_hd + n_native, seed)
    scenes: list[Scene] = []
    for i, bg in enumerate(backgrounds):
        kind = "hd" if i < n_hd else "native"
        if kind == "hd":
            bg = cv2.resize(bg, (1280, 720), interpolation=cv2.INTER_LINEAR)
            buckets = BUCKETS
        else:
            buckets = BUCKETS[:2]
        n = int(rng.integers(4, 11)) if kind == "hd" else int(rng.integers(2, 6))
        sizes = []
        for _ in range(n):
            lo, hi = buckets[int(rng.integers(0, len(buckets)))]
            sizes.append(int(rng.integers(lo, hi)))
        picks = [test[int(j)] for j in rng.integers(0, len(test), n)]
        crops = [(read_bgr(p), lab) for p, lab in picks]
        scenes.append(compose(bg, crops, sizes, rng, kind))
    return scenes


def save(scenes: list[Scene], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    labels = []
    for i, s in enumerate(scenes):
        name = f"scene_{i:04d}_{s.kind}.png"
        cv2.imwrite(str(out / name), s.image)
        labels.append({"file": name, "kind": s.kind,
                       "faces": [{"box": list(f.box), "label": f.label} for f in s.faces]})
    (out / "labels.json").write_text(json.dumps(labels))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("/tmp/civicam-scenes"))
    ap.add_argument("--hd", type=int, default=60)
    ap.add_argument("--native", type=int, default=30)
    a = ap.parse_args()
    scenes = make_scenes(a.hd, a.native)
    save(scenes, a.out)
    print(f"{len(scenes)} scenes, {sum(len(s.faces) for s in scenes)} faces -> {a.out}")


if __name__ == "__main__":
    main()


def entrance_video(path: Path, n_people: int, seed: int = SEED, size_range: tuple[int, int] = (60, 120),
                   fps: int = 25, width: int = 1280, height: int = 720, crops: list[tuple[Image, int]] | None = None
                   ) -> list[int]:
    """Write an entrance-like H.264 clip: ``n_people`` held-out faces walk across a static CCTV background,
    entering at staggered times (some overlap). Returns the true label of each person (0 mask, 1 no_mask)."""
    import av

    rng = np.random.default_rng(seed + 2)
    if crops is None:
        test = split()["test"]
        crops = [(read_bgr(p), lab) for p, lab in (test[int(j)] for j in rng.integers(0, len(test), n_people))]
    bg = cv2.resize(video_frames(1, seed + n_people)[0], (width, height), interpolation=cv2.INTER_LINEAR)
    people = []
    for k, (crop, _lab) in enumerate(crops[:n_people]):
        size = int(rng.integers(*size_range))
        h, w = crop.shape[:2]
        patch = cv2.resize(crop, (max(8, round(w * size / h)), size), interpolation=cv2.INTER_AREA)
        start = k * 1.6 + float(rng.uniform(0, 0.6))
        dur = float(rng.uniform(2.5, 3.5))
        y0 = float(rng.uniform(0.1, 0.8)) * (height - size)
        lr = rng.random() < 0.5
        x_from, x_to = (0.0, width - patch.shape[1] - 1.0) if lr else (width - patch.shape[1] - 1.0, 0.0)
        people.append((patch, start, dur, x_from, x_to, y0))
    total = max(p[1] + p[2] for p in people) + 2.0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "26"}
        for i in range(int(total * fps)):
            t = i / fps
            frame = bg.copy()
            for patch, start, dur, x_from, x_to, y0 in people:
                if start <= t <= start + dur:
                    a = (t - start) / dur
                    x, y = int(x_from + (x_to - x_from) * a), int(y0 + 8 * np.sin(6 * a))
                    ph, pw = patch.shape[:2]
                    frame[y:y + ph, x:x + pw] = patch
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return [lab for _, lab in crops[:n_people]]
