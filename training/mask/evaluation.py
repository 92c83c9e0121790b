"""AP50 evaluation (VOC all-point interpolation) with size buckets; pure numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = Sequence[float]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a (N,4) and b (M,4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def hit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Detector-agnostic "found" score matrix: 1 where the detection's centre lies inside the labelled
    box and its height is 0.5-1.5x the labelled height, else the IoU (so ``thr`` 0.5 keeps IoU hits).
    Needed because the pasted crops are not uniformly tight: the labelled box is the crop extent."""
    m = iou(a, b)
    if len(a) == 0 or len(b) == 0:
        return m
    cx, cy = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
    inside = ((cx[:, None] >= b[None, :, 0]) & (cx[:, None] <= b[None, :, 2])
              & (cy[:, None] >= b[None, :, 1]) & (cy[:, None] <= b[None, :, 3]))
    ratio = (a[:, 3] - a[:, 1])[:, None] / np.maximum(b[None, :, 3] - b[None, :, 1], 1e-9)
    return np.where(inside & (ratio >= 0.5) & (ratio <= 1.5), 1.0, m)


def match_image(dets: np.ndarray, scores: np.ndarray, gts: np.ndarray, ignore: np.ndarray,
                thr: float, size_range: tuple[float, float] | None, criterion: str = "iou") -> np.ndarray:
    """Per detection: 1 true positive, 0 false positive, -1 ignored (hits an ignored face, or falls
    outside ``size_range`` by its own height when it matches nothing)."""
    out = np.zeros(len(dets), int)
    if len(dets) == 0:
        return out
    ious = iou(dets, gts) if criterion == "iou" else hit(dets, gts)
    used = np.zeros(len(gts), bool)
    for i in np.argsort(-scores):
        cand = ious[i].copy() if len(gts) else np.zeros(0)
        if len(gts):
            cand[used | ignore] = -1
        j = int(np.argmax(cand)) if len(gts) else -1
        if j >= 0 and cand[j] >= thr:
            out[i], used[j] = 1, True
            continue
        if len(gts) and np.any(ious[i][ignore] >= thr):
            out[i] = -1
            continue
        if size_range is not None:
            h = dets[i, 3] - dets[i, 1]
            if not (size_range[0] * 0.8 <= h < size_range[1] * 1.25):
                out[i] = -1
                continue
        out[i] = 0
    return out


def average_precision(per_image: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], thr: float = 0.5,
                      size_range: tuple[float, float] | None = None,
                      criterion: str = "iou") -> tuple[float, float, int]:
    """per_image: (det boxes (N,4), det scores (N,), gt boxes (M,4), gt heights-based in-scope flags (M,)).
    Returns (AP, max recall, number of in-scope faces)."""
    all_scores: list[np.ndarray] = []
    all_tp: list[np.ndarray] = []
    n_pos = 0
    for dets, scores, gts, in_scope in per_image:
        ignore = ~in_scope
        n_pos += int(in_scope.sum())
        m = match_image(dets, scores, gts, ignore, thr, size_range, criterion)
        keep = m >= 0
        all_scores.append(scores[keep])
        all_tp.append(m[keep])
    if n_pos == 0:
        return float("nan"), float("nan"), 0
    s = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0)
    order = np.argsort(-s, kind="stable")
    tp = tp[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / n_pos
    precision = ctp / np.maximum(ctp + cfp, 1e-9)
    mrec = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    ap = float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
    return ap, float(recall[-1]) if len(recall) else 0.0, n_pos
