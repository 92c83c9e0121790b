"""Blur every detected face region so that no face is recognisable or detectable afterwards."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from civicam.analytics.detections import Detections

Frame = npt.NDArray[np.uint8]


def blur_faces(frame: Frame, faces: Detections, padding: float = 0.5, blocks: int = 4) -> Frame:
    """Return a copy of ``frame`` where each face box, padded by ``padding`` of its size on every side,
    is pixelated to at most ``blocks`` cells across and then smoothed with a heavy Gaussian. Pure."""
    out = frame.copy()
    h, w = frame.shape[:2]
    for x1, y1, x2, y2 in faces.boxes:
        bw, bh = float(x2 - x1), float(y2 - y1)
        a, b = max(0, int(x1 - bw * padding)), max(0, int(y1 - bh * padding))
        c, d = min(w, int(np.ceil(x2 + bw * padding))), min(h, int(np.ceil(y2 + bh * padding)))
        if c - a < 1 or d - b < 1:
            continue
        roi = out[b:d, a:c]
        rw, rh = c - a, d - b
        small = cv2.resize(roi, (max(1, min(blocks, rw)), max(1, min(blocks, rh))), interpolation=cv2.INTER_AREA)
        pix = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
        k = max(3, (max(rw, rh) // 4) | 1)
        out[b:d, a:c] = cv2.GaussianBlur(pix, (k, k), 0)
    return out
