"""SSD priors, box coding and NMS for the face detector: pure numpy, shared by training and inference.

Priors are laid on feature maps at strides 8/16/32/64 with the min sizes below (in input pixels), centre
form and normalised to the input size. Offsets are coded with variances 0.1 (centre) and 0.2 (size).
>>> p = priors(640, 384)
>>> p.shape
(13440, 4)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

STRIDES: Final = (8, 16, 32, 64)
MIN_SIZES: Final = ((10.0, 16.0, 24.0), (32.0, 48.0), (64.0, 96.0), (128.0, 192.0, 256.0))
CENTER_VARIANCE: Final = 0.1
SIZE_VARIANCE: Final = 0.2


def feature_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(w, h) of each head's feature map: every stride-2 conv (k3, p1) maps n to ceil(n / 2)."""
    out: list[tuple[int, int]] = []
    w, h = width, height
    for level in range(1, 7):  # strides 2, 4, ..., 64
        w, h = math.ceil(w / 2), math.ceil(h / 2)
        if 2**level in STRIDES:
            out.append((w, h))
    return out


@lru_cache(maxsize=16)
def _priors(width: int, height: int) -> FloatArray:
    rows: list[FloatArray] = []
    for (fw, fh), sizes in zip(feature_sizes(width, height), MIN_SIZES, strict=True):
        # Cell centres spread over the whole input, (i + 0.5) / cells, as the published model has them
        # (the same as i + 0.5 strides where the input is a multiple of the stride).
        xs = (np.arange(fw, dtype=np.float32) + 0.5) / fw
        ys = (np.arange(fh, dtype=np.float32) + 0.5) / fh
        cy, cx = np.meshgrid(ys, xs, indexing="ij")
        n = len(sizes)
        wh = np.array([[s / width, s / height] for s in sizes], np.float32)
        grid = np.stack([cx, cy], -1).reshape(-1, 1, 2).repeat(n, 1)
        rows.append(np.concatenate([grid, np.broadcast_to(wh, grid.shape)], -1).reshape(-1, 4))
    return np.clip(np.concatenate(rows), 0.0, 1.0).astype(np.float32)


def priors(width: int, height: int) -> FloatArray:
    """All priors (P, 4) as (cx, cy, w, h) in 0..1 of a ``width`` x ``height`` input, head by head."""
    p = _priors(int(width), int(height))
    p.flags.writeable = False
    return p


def decode(offsets: FloatArray, prior: FloatArray) -> FloatArray:
    """Offsets (P, 4) against priors (P, 4) -> corner boxes (x1, y1, x2, y2) in 0..1 of the input."""
    centre = prior[:, :2] + offsets[:, :2] * CENTER_VARIANCE * prior[:, 2:]
    size = prior[:, 2:] * np.exp(np.clip(offsets[:, 2:] * SIZE_VARIANCE, -10.0, 10.0))
    return np.concatenate([centre - size / 2, centre + size / 2], 1).astype(np.float32)


def encode(boxes: FloatArray, prior: FloatArray) -> FloatArray:
    """Inverse of ``decode``: corner boxes (P, 4) -> offsets against the priors (training targets)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)
    return np.concatenate([(centre - prior[:, :2]) / (CENTER_VARIANCE * prior[:, 2:]),
                           np.log(size / prior[:, 2:]) / SIZE_VARIANCE], 1).astype(np.float32)


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU between corner boxes a (N, 4) and b (M, 4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), -1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), -1)
    return np.asarray(inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12), np.float32)


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float, limit: int = 200) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression: indexes of kept boxes, best first, at most ``limit``."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou_matrix(boxes[i:i + 1], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, np.intp)
