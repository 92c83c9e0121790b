"""Faces left recognisable after blurring, on many held-out faces: the privacy test's oracle at scale.

The privacy test (tests/integration/test_privacy.py) serves one clip of seven faces through the hub. This
benchmark asks the same question of more faces: ``--clips`` clips, each with eight (``--faces``) faces of the mask-crops
**test** split (never used in training the detector), masked and bare, 24-200 px high, walking in every
direction at 1-8 px a frame over frames of the shared CCTV videos (scaled to 1280x720), degraded as CCTV
is. Each clip goes through ``FaceBlur`` (what the hub does to every served, live and exported frame) for
each variant, and what comes out is checked inside every true box against the source with
``support.faces.recognisable`` (no face detector takes part in the judgement). Reference: the unblurred
re-encode, where nearly every box must read as recognisable (it shows the oracle can tell).

    nice .venv/bin/python bench/privacy.py [--clips 12] [--variants current,side800]

Prints, per variant, the share of true boxes left recognisable by face height (and for faces >= 24 px
high and >= 24 px wide) and the CPU time per video-second of the blurring, one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "training" / "mask"))
cv2.setNumThreads(1)

from data import cctv_degrade, read_bgr, split, video_frames  # noqa: E402

from civicam.analytics.faces import BLUR_MIN_SCORE, create_detector  # noqa: E402
from civicam.live.cover import HOLD_INTERVALS  # noqa: E402
from civicam.live.privacy import FaceBlur  # noqa: E402
from support.faces import H, W, Walker, decode, recognisable, walkers_clip  # noqa: E402

Image = np.ndarray
Box = tuple[int, int, int, int]
HEIGHTS = ((24, 32), (32, 48), (48, 96), (96, 201))
BUCKETS = ((24, 32), (32, 48), (48, 96), (96, 10_000))


def _walkers(rng: np.random.Generator, crops: list[Image]) -> list[Walker]:
    """One face per lane (the height bands in turn), each with its own speed and direction."""
    out: list[Walker] = []
    lane = H / len(crops)
    for k, crop in enumerate(crops):
        lo, hi = HEIGHTS[k % len(HEIGHTS)]
        h = int(rng.integers(lo, hi))
        face = cctv_degrade(crop, rng, 0.5)
        face = cv2.resize(face, (max(8, round(face.shape[1] * h / face.shape[0])), h), interpolation=cv2.INTER_AREA)
        speed, angle = float(rng.uniform(1, 8)), float(rng.uniform(0, 2 * np.pi))
        vx, vy = speed * np.cos(angle), 0.3 * speed * np.sin(angle)  # mostly along the corridor
        x = float(rng.uniform(100, W - 100 - face.shape[1]))
        y = float(np.clip(k * lane + (lane - h) / 2, 0, H - h - 1))
        out.append(Walker(np.ascontiguousarray(face), x, y, vx, vy))
    return out


def blurred(path: Path, make: Callable[[], FaceBlur | None]) -> tuple[list[Image], float]:
    """(frames after the variant's blur, CPU seconds of decode + blur)."""
    t0 = time.thread_time()
    fb = make()
    out: list[Image] = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            ready = [frame] if fb is None else fb.push(frame)
            out += [f.to_ndarray(format="bgr24") for f in ready]
    if fb is not None:
        out += [f.to_ndarray(format="bgr24") for f in fb.flush()]
    return out, time.thread_time() - t0


def _altered(source: Image, served: Image) -> float:
    """Share of the frame's pixels the blur changed by more than 8 grey levels."""
    diff = cv2.absdiff(cv2.cvtColor(source, cv2.COLOR_BGR2GRAY), cv2.cvtColor(served, cv2.COLOR_BGR2GRAY))
    return float((diff > 8).mean())


VARIANTS: dict[str, Callable[[], FaceBlur | None]] = {
    "unblurred": lambda: None,
    "current": FaceBlur,
    "side800": lambda: FaceBlur(detect_side=800),
    "side960": lambda: FaceBlur(detect_side=960),
    "every3": lambda: FaceBlur(every=3),
    "ahead": lambda: FaceBlur(look_ahead=HOLD_INTERVALS),  # as a segment blurred whole (playback, export)
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--variants", default="unblurred,current")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--faces", type=int, default=8, help="faces per clip, half masked (even)")
    ap.add_argument("--show", type=int, default=20, help="how many boxes left recognisable to list")
    ap.add_argument("--min-score", type=float, default=None, help="the blur's detector threshold (default: civicam's)")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    test = split()["test"]
    masked = [p for p, label in test if label == 0]
    bare = [p for p, label in test if label == 1]
    backdrops = video_frames(a.clips, seed=a.seed)
    names = a.variants.split(",")
    counts = {n: np.zeros((len(BUCKETS) + 1, 2), int) for n in names}  # per bucket: (checked, recognisable)
    cpu = dict.fromkeys(names, 0.0)
    altered = dict.fromkeys(names, 0.0)  # share of frame pixels the blur changed: what it costs the picture
    missed: dict[str, list[str]] = {n: [] for n in names}
    if a.min_score is not None:
        VARIANTS["current"] = lambda: FaceBlur(create_detector(options={"min_score": a.min_score, "side": 640}))
    print(f"blur threshold {a.min_score or BLUR_MIN_SCORE}; {a.clips} clips x {a.seconds} s; seed {a.seed}")
    with tempfile.TemporaryDirectory() as tmp:
        for c in range(a.clips):
            half = max(1, a.faces // 2)
            pick = [masked[int(i)] for i in rng.choice(len(masked), half, replace=False)] + \
                   [bare[int(i)] for i in rng.choice(len(bare), half, replace=False)]
            crops = [read_bgr(p) for p in pick]
            order = rng.permutation(len(crops))
            crops = [crops[i] for i in order]
            bg = cv2.resize(backdrops[c], (W, H), interpolation=cv2.INTER_LINEAR)
            clip = Path(tmp) / f"clip{c}.mp4"
            truth = walkers_clip(clip, _walkers(rng, crops), a.seconds, backdrop=bg)
            sources = decode(clip)
            for n in names:
                served, secs = blurred(clip, VARIANTS[n])
                cpu[n] += secs
                assert len(served) == len(sources), (n, len(served), len(sources))
                altered[n] += sum(_altered(a, b) for a, b in zip(sources, served, strict=True)) / len(sources)
                for fi, (src, out, boxes) in enumerate(zip(sources, served, truth, strict=True)):
                    for box in boxes:
                        h, w = box[3] - box[1], box[2] - box[0]
                        if h < 24 or w < 8:
                            continue
                        b = next(i for i, (lo, hi) in enumerate(BUCKETS) if lo <= h < hi)
                        hit = recognisable(src, out, box)
                        counts[n][b] += (1, int(hit))
                        if w >= 24:
                            counts[n][-1] += (1, int(hit))
                        if hit and n != "unblurred":
                            edge = " edge" if box[0] == 0 or box[2] == W or box[1] == 0 or box[3] == H else ""
                            missed[n].append(f"clip {c} frame {fi} {w}x{h}{edge}")
    video_s = a.clips * a.seconds
    head = " | ".join(f"{lo}-{hi if hi < 10_000 else ''} px" for lo, hi in BUCKETS)
    print(f"\n| variant | {head} | all >= 24 px high | >= 24 px high and wide | CPU-s per video-second "
          "| frame area altered |")
    print("|---|" + "---|" * (len(BUCKETS) + 4))
    for n in names:
        k = counts[n]
        cells = [f"{k[i, 1] / k[i, 0]:.2%} of {k[i, 0]}" if k[i, 0] else "-" for i in range(len(BUCKETS))]
        tot = k[:-1].sum(axis=0)
        print(f"| {n} | " + " | ".join(cells) + f" | {tot[1] / tot[0]:.2%} of {tot[0]} | "
              f"{k[-1, 1] / max(k[-1, 0], 1):.2%} of {k[-1, 0]} | {cpu[n] / video_s:.3f} | "
              f"{altered[n] / a.clips:.1%} |")
    for n in names:
        if missed[n]:
            print(f"{n}: left recognisable: {', '.join(missed[n][:a.show])}{' ...' if len(missed[n]) > a.show else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
