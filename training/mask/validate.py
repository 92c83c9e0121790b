"""Validation of the entrance analytics on held-out data; prints Markdown for docs/analytics-validation.md.

Everything is generated on the fly with a fixed seed from held-out (test split) crops and frames of the
shared CCTV clips; nothing is written to the repo. Run in the project venv:
    nice .venv/bin/python training/mask/validate.py all            # classifier, scenes, counting
    nice .venv/bin/python training/mask/validate.py detectors --preds /tmp/civicam-preds
    nice .venv/bin/python training/mask/validate.py isolated --backends rfb,centerface
(the second needs JSON from detectors_compare.py, run in throwaway venvs per candidate package).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import SEED, cctv_degrade, read_bgr, split, video_frames  # noqa: E402
from evaluation import average_precision  # noqa: E402
from scenes import BUCKETS, entrance_video, make_scenes  # noqa: E402

from civicam.analytics.mask import MaskClassifier  # noqa: E402
from civicam.analytics.pipeline import FrameAnalyzer, VideoAnalyzer  # noqa: E402

RANGES: list[tuple[str, tuple[float, float] | None]] = [("all", None)] + [(f"{a}-{b}px", (a, b)) for a, b in BUCKETS]


def classifier_report() -> None:
    clf = MaskClassifier()
    test = split()["test"]
    y = np.array([lab for _, lab in test])
    imgs = [read_bgr(p) for p, _ in test]
    print("### Mask classifier on the held-out test split\n")
    print(f"{len(test)} crops ({int((y == 0).sum())} mask, {int((y == 1).sum())} no_mask), never used in training.\n")
    print("| condition | accuracy | mask recall | no_mask recall | unknown rate (thr "
          f"{clf.threshold}) | accuracy of decided |")
    print("|---|---|---|---|---|---|")
    import cv2
    rng = np.random.default_rng(SEED + 11)
    conds: list[tuple[str, list[np.ndarray]]] = [("clean crop", imgs)]
    for side in (24, 32, 48, 64):
        degraded = []
        for im in imgs:
            h, w = im.shape[:2]
            s = side / h
            small = cv2.resize(im, (max(4, round(w * s)), side), interpolation=cv2.INTER_AREA)
            degraded.append(cctv_degrade(np.asarray(small, np.uint8), rng, 0.7))
        conds.append((f"CCTV-like, face {side}px", degraded))
    for name, crops in conds:
        p = clf.predict_crops(crops)
        pred = p.argmax(1)
        conf = p.max(1)
        decided = conf >= clf.threshold
        acc = float((pred == y).mean())
        rec = [float((pred[y == c] == c).mean()) for c in (0, 1)]
        acc_d = float((pred[decided] == y[decided]).mean()) if decided.any() else float("nan")
        print(f"| {name} | {acc:.3f} | {rec[0]:.3f} | {rec[1]:.3f} | {1 - decided.mean():.3f} | {acc_d:.3f} |")
    print()


def scenes_report(n_hd: int, n_native: int) -> None:
    scenes = make_scenes(n_hd, n_native)
    fa = FrameAnalyzer()
    det_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    cls_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    t0 = time.perf_counter()
    for s in scenes:
        faces, results = fa.analyze_raw(s.image)
        probs = np.array([r.probs for r in results], np.float32).reshape(-1, 2)
        g = np.array([f.box for f in s.faces], float).reshape(-1, 4)
        gl = np.array([f.label for f in s.faces], int)
        det_rows.append((faces.boxes.astype(float), faces.scores.astype(float), g))
        cls_rows.append((faces.boxes.astype(float), faces.scores.astype(float), probs, g, gl))
    elapsed = time.perf_counter() - t0
    n_faces = sum(len(s.faces) for s in scenes)
    print(f"### Whole scenes ({len(scenes)} scenes: {n_hd} at 1280x720, {n_native} at native 384x288/480x360; "
          f"{n_faces} faces; {elapsed / len(scenes):.2f} s per scene incl. classification)\n")
    print("Matching: **IoU** = standard AP50 against the pasted crop's extent; **hit** = AP50 where a detection "
          "also counts when its centre is inside the labelled box and its height is 0.5-1.5x (the crops are not "
          "uniformly tight, so strict IoU with the crop extent under-states detection).\n")
    print("| metric | " + " | ".join(name for name, _ in RANGES) + " |")
    print("|---|" + "---|" * len(RANGES))
    for crit in ("iou", "hit"):
        cells = []
        for _, rng in RANGES:
            per = []
            for boxes, scores, g in det_rows:
                h = g[:, 3] - g[:, 1]
                scope = np.ones(len(g), bool) if rng is None else (h >= rng[0]) & (h < rng[1])
                per.append((boxes, scores, g, scope))
            ap, rec, n = average_precision(per, 0.5, rng, crit)
            cells.append(f"{ap:.3f} (R {rec:.2f}, n={n})")
        print(f"| face AP50 [{crit}] | " + " | ".join(cells) + " |")
    for crit in ("iou", "hit"):
        for c, cname in ((0, "mask"), (1, "no_mask")):
            cells = []
            for _, rng in RANGES:
                per = []
                for boxes, scores, probs, g, gl in cls_rows:
                    # each detection predicts class c with score det_score * p_c (too-small faces: p = 0)
                    sc = scores * probs[:, c] if len(probs) else scores
                    keep = sc > 0
                    h = g[:, 3] - g[:, 1]
                    in_range = np.ones(len(g), bool) if rng is None else (h >= rng[0]) & (h < rng[1])
                    # faces of the other class are not ignored: a c-prediction on them is a false positive
                    gc = g[gl == c]
                    per.append((boxes[keep], sc[keep], gc, in_range[gl == c]))
                ap, rec, n = average_precision(per, 0.5, rng, crit)
                cells.append(f"{ap:.3f} (n={n})")
            print(f"| {cname} AP50 [{crit}] | " + " | ".join(cells) + " |")
    print()


def counting_report(videos: int) -> None:
    print("### Counting on synthetic entrance videos (1280x720@25, analysed at 5 fps)\n")
    print("| video | people (true) | counted | masked true/counted | unmasked true/counted | unknown |")
    print("|---|---|---|---|---|---|")
    errs = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in range(videos):
            n = 4 + 2 * v
            path = Path(tmp) / f"entrance_{v}.mp4"
            labels = entrance_video(path, n, seed=SEED + 100 * v)
            rep = VideoAnalyzer().analyze(path)
            t = rep.totals
            errs.append(abs(t.people - n) / n)
            print(f"| {v} | {n} | {t.people} | {labels.count(0)}/{t.masked} | {labels.count(1)}/{t.unmasked} "
                  f"| {t.unknown} |")
    print(f"\nMean absolute counting error: {100 * float(np.mean(errs)):.1f} %\n")


def _centre_recall(preds: dict[str, list[list[float]]], labels: list[dict[str, Any]], cls: int) -> float:
    """Share of faces of class ``cls`` with a detection centred inside the labelled box at 0.25-1.5x its
    height. Looser than ``hit``: a detector that boxes only the face inside a loose crop (hair, shoulders)
    gets 0.3-0.5x the crop height, which ``hit`` counts as a miss though the face was found."""
    found = total = 0
    for item in labels:
        p = np.array(preds[item["file"]], float).reshape(-1, 5)
        for f in item["faces"]:
            if f["label"] != cls:
                continue
            x1, y1, x2, y2 = f["box"]
            cx, cy, h = (p[:, 0] + p[:, 2]) / 2, (p[:, 1] + p[:, 3]) / 2, p[:, 3] - p[:, 1]
            ok = (cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2) & (h >= 0.25 * (y2 - y1)) & (h <= 1.5 * (y2 - y1))
            found += int(ok.any())
            total += 1
    return found / max(total, 1)


def isolated_report(names: list[str], sides: tuple[int, ...] = (32, 64, 128), min_score: float = 0.5) -> None:
    """Each held-out test crop alone, scaled to ``sides`` px high, pasted on a native CCTV frame: share of
    masked / unmasked crops with a detection (score >= ``min_score``) centred inside the crop."""
    import cv2

    from civicam.analytics.faces import create_detector

    test = split()["test"]
    bg = video_frames(1, SEED + 7)[0]
    rng = np.random.default_rng(SEED + 13)
    print("| detector | " + " | ".join(f"{s} px masked / unmasked" for s in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for name in names:
        det = create_detector(name, {"min_score": min_score})
        cells = []
        for side in sides:
            hits = {0: [0, 0], 1: [0, 0]}
            for path, lab in test:
                crop = read_bgr(path)
                h, w = crop.shape[:2]
                patch = cv2.resize(crop, (max(4, round(w * side / h)), side), interpolation=cv2.INTER_AREA)
                img = bg.copy()
                ph, pw = patch.shape[:2]
                y, x = int(rng.integers(0, img.shape[0] - ph)), int(rng.integers(0, img.shape[1] - pw))
                img[y:y + ph, x:x + pw] = patch
                b = det.detect(img).boxes
                cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
                hits[lab][0] += int(((cx >= x) & (cx <= x + pw) & (cy >= y) & (cy <= y + ph)).any())
                hits[lab][1] += 1
            cells.append(f"{hits[0][0] / hits[0][1]:.2f} / {hits[1][0] / hits[1][1]:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def detectors_report(preds_dir: Path, scenes_dir: Path) -> None:
    labels = json.loads((scenes_dir / "labels.json").read_text())
    print("| detector | ms / 1280x720 frame (1 thread) | " + " | ".join(f"AP50 {n} [iou/hit]" for n, _ in RANGES)
          + " | recall all [hit] | recall masked / unmasked [hit] | recall masked / unmasked [centre] |")
    print("|---|---|" + "---|" * (len(RANGES) + 3))
    for f in sorted(preds_dir.glob("*.json")):
        d = json.loads(f.read_text())
        cells = []
        rec_all = 0.0
        for _, rng in RANGES:
            vals = []
            for crit in ("iou", "hit"):
                per = []
                for item in labels:
                    p = np.array(d["preds"][item["file"]], float).reshape(-1, 5)
                    g = np.array([x["box"] for x in item["faces"]], float).reshape(-1, 4)
                    h = g[:, 3] - g[:, 1]
                    scope = np.ones(len(g), bool) if rng is None else (h >= rng[0]) & (h < rng[1])
                    per.append((p[:, :4], p[:, 4], g, scope))
                ap, rec, _ = average_precision(per, 0.5, rng, crit)
                vals.append(f"{ap:.3f}")
                if rng is None and crit == "hit":
                    rec_all = rec
            cells.append(" / ".join(vals))
        by_class = []
        for c in (0, 1):
            per = []
            for item in labels:
                p = np.array(d["preds"][item["file"]], float).reshape(-1, 5)
                g = np.array([x["box"] for x in item["faces"]], float).reshape(-1, 4)
                per.append((p[:, :4], p[:, 4], g, np.array([x["label"] == c for x in item["faces"]], bool)))
            by_class.append(average_precision(per, 0.5, None, "hit")[1])
        centre = [_centre_recall(d["preds"], labels, c) for c in (0, 1)]
        print(f"| {d['backend']} | {d['ms_per_1280x720']:.0f} | " + " | ".join(cells)
              + f" | {rec_all:.3f} | {by_class[0]:.3f} / {by_class[1]:.3f} | {centre[0]:.3f} / {centre[1]:.3f} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["all", "classifier", "scenes", "counting", "detectors", "isolated"])
    ap.add_argument("--backends", default="rfb,centerface", help="registry names for ``isolated``")
    ap.add_argument("--hd", type=int, default=60)
    ap.add_argument("--native", type=int, default=30)
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--preds", type=Path, default=Path("/tmp/civicam-preds"))
    ap.add_argument("--scenes", type=Path, default=Path("/tmp/civicam-scenes"))
    a = ap.parse_args()
    if a.what in ("all", "classifier"):
        classifier_report()
    if a.what in ("all", "scenes"):
        scenes_report(a.hd, a.native)
    if a.what in ("all", "counting"):
        counting_report(a.videos)
    if a.what == "detectors":
        detectors_report(a.preds, a.scenes)
    if a.what == "isolated":
        isolated_report(a.backends.split(","))


if __name__ == "__main__":
    main()
