"""Face detectors side by side on mask-scenes: AP50 per class and recall per face width; Markdown out.

Runs in the project venv (onnxruntime, yuface), one thread, every system on the same images in one run:
    nice .venv/bin/python training/faces/evaluate.py --split val           # reported figures
    nice .venv/bin/python training/faces/evaluate.py --split dev           # choosing settings
    nice .venv/bin/python training/faces/evaluate.py --split composed      # CCTV scenes, held-out crops
``val`` is ``val.txt`` (never used in training or to choose anything); ``dev`` is the 10 % of
``train.txt`` held out of training to choose the labeller and thresholds.

Per-class AP50: each box carries one label (what civicam would report) and its detector score; a box
labelled c on a face of the other class is a false positive; masks worn incorrectly are ignored in the
per-class APs (neither class) but count as faces in the recall table (they must be blurred).
"Faces >= 24 px": faces narrower than 24 px are ignored, and so are unmatched boxes of that size.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "mask"))
from evaluation import average_precision, hit, iou  # noqa: E402
from samples import SCENES, read_annotation, scene_split  # noqa: E402

from civicam.analytics.detections import Detections  # noqa: E402
from civicam.analytics.labels import LABELLERS, MaskLabeller  # noqa: E402
from civicam.analytics.mask import MaskClassifier  # noqa: E402

cv2.setNumThreads(1)
PRETRAINED = HERE.parents[1] / ".." / "shared" / "models" / "rfb-masked-face" / "RFB-640-masked_face-v2.onnx"
BUCKETS = ((16, 24), (24, 32), (32, 48), (48, 96), (96, 10_000))
MIN_WIDTH = 24
GT_CLASS = {2: "mask", 1: "no_mask"}  # samples.NAMES: 1 without, 2 with, 3 incorrect
Labelled = tuple[Detections, tuple[str, ...]]
System = Callable[[np.ndarray], Labelled]


def yuface_detect(img: np.ndarray) -> Detections:
    """civicam's detector before this one: YuNet in the ``yuface`` wheel (``pip install -e '.[compare]'``)."""
    import yuface

    raw = np.asarray(yuface.c_detect(np.ascontiguousarray(img)), np.float32).reshape(-1, 16)
    raw = raw[raw[:, 0] >= 30]
    boxes = raw[:, 1:5].copy()
    boxes[:, 2:] += boxes[:, :2]
    return Detections(boxes, raw[:, 0] / 100)


def systems(names: list[str], model: Path | None = None) -> dict[str, System]:
    from civicam.analytics.rfb import RfbDetector

    clf = MaskClassifier()
    out: dict[str, System] = {}

    def with_labeller(det: Callable[[np.ndarray], Detections], mode: str) -> System:
        lab = MaskLabeller(clf, mode)
        return lambda img: (lambda d: (d, lab.labels(img, d)))(det(img))

    for name in names:
        base, _, mode = name.partition("+")
        mode = mode or "detector"
        if base.startswith("rfb"):
            size, _, variant = base[3:].partition("-")  # rfb, rfb960, rfb-flip (the frame and its mirror)
            if variant not in ("", "flip"):
                raise SystemExit(f"unknown rfb variant {variant!r} (rfb[SIDE][-flip])")
            kw = {"model_path": model} if model else {}
            # Fused, a box one pass of two found at 0.05 scores 0.025: keep those too.
            det: Callable[[np.ndarray], Detections] = RfbDetector(
                min_score=0.025 if variant == "flip" else 0.05, side=int(size or 640), flip=variant == "flip",
                **kw).detect
        elif base == "pretrained":
            det = RfbDetector(min_score=0.05, model_path=PRETRAINED).detect
        elif base == "yunet":
            mode = "classifier"
            det = yuface_detect
        else:
            raise SystemExit(f"unknown system {name}")
        out[name] = with_labeller(det, mode)
    return out


Data = tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]], str]


def mask_scenes(split: str, limit: int) -> Data:
    files = scene_split()[split][:limit or None]
    gts = [read_annotation(n) for n in files]
    images = [cv2.imread(str(SCENES / "images" / f"{n}.jpg")) for n in files]
    return images, gts, f"mask-scenes `{split}`: {len(files)} images"


def composed(limit: int) -> Data:
    """1280x720 frames of the shared CCTV clips with held-out (test split) mask crops pasted, 24-200 px
    high (training/mask/scenes.py); the labelled box is the pasted crop's extent."""
    from scenes import make_scenes

    scenes = make_scenes(limit or 60, 0)
    gts = [(np.array([f.box for f in s.faces], np.float32).reshape(-1, 4),
            np.array([2 if f.label == 0 else 1 for f in s.faces], np.int64)) for s in scenes]
    return [s.image for s in scenes], gts, f"composed CCTV scenes: {len(scenes)} frames at 1280x720"


def evaluate(names: list[str], data: Data, op_score: float, criterion: str = "iou", iou_thr: float = 0.5,
             model: Path | None = None) -> None:
    images, gts, what = data
    n_faces = sum(len(b) for b, _ in gts)
    print(f"{what}, {n_faces} faces; matching: {criterion} >= {iou_thr}; recall at score >= {op_score}\n")
    rows = []
    for name, run in systems(names, model).items():
        t0 = time.perf_counter()
        preds = [run(img) for img in images]
        ms = 1000 * (time.perf_counter() - t0) / len(images)
        cells = [name, f"{ms:.0f}"]
        for cls_id, cls_name in ((2, "mask"), (1, "no_mask")):
            for min_w in (0, MIN_WIDTH):
                per = []
                for (d, labels), (g, gl) in zip(preds, gts, strict=True):
                    pick = np.array([lab == cls_name for lab in labels], bool)
                    keep = (gl == cls_id) | (gl == 3)  # other-class faces dropped: boxes on them are FPs
                    gw = g[keep, 2] - g[keep, 0]
                    scope = (gl[keep] == cls_id) & (gw >= min_w)
                    per.append((d.boxes[pick].astype(float), d.scores[pick].astype(float), g[keep].astype(float),
                                scope))
                ap, _, _ = average_precision(per, iou_thr, (min_w, 10_000.0) if min_w else None, criterion)
                cells.append(f"{ap:.3f}")
        for cls_id in (2, 1):
            for lo, hi in BUCKETS:
                found = total = 0
                for (d, _), (g, gl) in zip(preds, gts, strict=True):
                    gw = g[:, 2] - g[:, 0]
                    sel = (gl == cls_id) & (gw >= lo) & (gw < hi)
                    total += int(sel.sum())
                    boxes = d.boxes[d.scores >= op_score].astype(float)
                    if sel.any() and len(boxes):
                        m = iou(boxes, g[sel].astype(float)) if criterion == "iou" else hit(boxes, g[sel].astype(float))
                        found += int((m.max(0) >= 0.5).sum())
                cells.append(f"{found / total:.2f}" if total else "-")
        rows.append(cells)
    head = ["system", "ms/img", "mask AP all", "mask AP >=24", "no_mask AP all", "no_mask AP >=24"]
    head += [f"{c} R {lo}-{hi if hi < 10_000 else ''}" for c in ("mask", "no_mask") for lo, hi in BUCKETS]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "val", "composed"), default="val",
                    help="composed: CCTV scenes from held-out crops, matched with evaluation.hit")
    ap.add_argument("--systems", default=",".join(["yunet", "pretrained", "pretrained+classifier", "rfb",
                                                   "rfb+classifier", "rfb+fused", "rfb960", "rfb-flip"]),
                    help=f"comma-separated; labellers: {', '.join(LABELLERS)}")
    ap.add_argument("--limit", type=int, default=0, help="first N images only (quick checks)")
    ap.add_argument("--op-score", type=float, default=0.5, help="score for the recall table")
    ap.add_argument("--iou", type=float, default=0.5, help="match threshold of the APs (0.5: AP50, the goal's)")
    ap.add_argument("--model", type=Path, help="an ONNX candidate (train.py --out) run as the rfb systems")
    a = ap.parse_args()
    data = composed(a.limit) if a.split == "composed" else mask_scenes(a.split, a.limit)
    evaluate(a.systems.split(","), data, a.op_score, "hit" if a.split == "composed" else "iou", a.iou, a.model)


if __name__ == "__main__":
    main()
