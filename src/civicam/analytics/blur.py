"""Blur every detected face region so that no face is recognisable or detectable afterwards."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from civicam.analytics.detections import Detections

Frame = npt.NDArray[np.uint8]


def pad_boxes(boxes: npt.NDArray[np.float32], padding: float) -> npt.NDArray[np.float32]:
    """Boxes (xyxy) grown by ``padding`` of their own width and height on every side."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.asarray(np.stack([boxes[:, 0] - w * padding, boxes[:, 1] - h * padding,
                                boxes[:, 2] + w * padding, boxes[:, 3] + h * padding], 1), np.float32)


def _smear(plane: Frame, a: int, b: int, c: int, d: int, blocks: int) -> None:
    """Average ``plane[b:d, a:c]`` down to at most ``blocks`` cells across and stretch it back bilinearly.

    Bilinear stretching of the cells is as smooth as a Gaussian over blocky cells, at a fraction of the
    cost (a Gaussian as wide as a quarter of a large region was 10 ms a call)."""
    roi = plane[b:d, a:c]
    rh, rw = roi.shape[:2]
    if rw < 1 or rh < 1:
        return
    small = cv2.resize(roi, (max(1, min(blocks, rw)), max(1, min(blocks, rh))), interpolation=cv2.INTER_AREA)
    plane[b:d, a:c] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR)


def blur_faces(frame: Frame, faces: Detections, padding: float = 0.5, blocks: int = 4) -> Frame:
    """Return a copy of ``frame`` where each face box, padded by ``padding`` of its size on every side,
    is averaged down to at most ``blocks`` cells across and stretched back smoothly (bilinear): what is
    left is a soft gradient of ``blocks`` x ``blocks`` colours. Pure."""
    out = frame.copy()
    h, w = frame.shape[:2]
    for x1, y1, x2, y2 in pad_boxes(faces.boxes, padding):
        _smear(out, max(0, int(x1)), max(0, int(y1)), min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2))), blocks)
    return out


def _outermost(regions: npt.NDArray[np.float32], w: int, h: int) -> list[tuple[int, int, int, int]]:
    """The regions as pixel rectangles inside a w x h frame (starts even, so the chroma cells line up),
    less those inside another: smearing the outer one to ``blocks`` cells already leaves nothing finer
    inside it, and the blurred live view's regions overlap heavily (a face's box inside its motion hull)."""
    r = np.asarray(regions, np.float32).reshape(-1, 4)
    rect = np.stack([np.maximum(0, r[:, 0]).astype(int) & ~1, np.maximum(0, r[:, 1]).astype(int) & ~1,
                     np.minimum(w, np.ceil(r[:, 2])).astype(int), np.minimum(h, np.ceil(r[:, 3])).astype(int)], 1)
    rect = rect[(rect[:, 2] - rect[:, 0] >= 1) & (rect[:, 3] - rect[:, 1] >= 1)]
    rect = np.unique(rect, axis=0)
    inside: npt.NDArray[np.bool_] = np.asarray(
        ((rect[None, :, :2] <= rect[:, None, :2]) & (rect[None, :, 2:] >= rect[:, None, 2:])).all(axis=2), bool)
    np.fill_diagonal(inside, False)  # [i, j]: rect i lies within rect j (no duplicates left after unique)
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in rect[~inside.any(axis=1)]]


def blur_regions_yuv420(planes: Frame, regions: npt.NDArray[np.float32], blocks: int = 4) -> Frame:
    """``blur_faces`` for a decoded frame as it comes (planar YUV 4:2:0 laid out as PyAV's
    ``to_ndarray(format="yuv420p")``: (H * 3 / 2, W)), ``regions`` xyxy in pixels, already padded.
    Works on a copy; skips two colour conversions per frame that the BGR route costs."""
    out = planes.copy()
    h, w = out.shape[0] * 2 // 3, out.shape[1]
    y = out[:h]
    u = out[h:h + h // 4].reshape(h // 2, w // 2)
    v = out[h + h // 4:].reshape(h // 2, w // 2)
    for a, b, c, d in _outermost(regions, w, h):
        _smear(y, a, b, c, d, blocks)
        for plane in (u, v):
            _smear(plane, a // 2, b // 2, (c + 1) // 2, (d + 1) // 2, blocks)
    return out
