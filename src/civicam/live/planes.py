"""Decoded pictures as PyAV lays out planar YUV 4:2:0 (``to_ndarray(format="yuv420p")``: one (H * 3/2, W)
array, Y then U then V), scaled with OpenCV. Pure.

The wall rendition scales every blurred frame from 1280x720 to 640x360: OpenCV's area resize of the three
planes takes 0.38 ms, FFmpeg's scaler (``VideoFrame.reformat``) 1.7-4.3 ms (the latter under load), on a
frame already in hand as planes (no ``from_ndarray`` of the full frame either). The detector's input is
still made by FFmpeg's scaler: it saw fewer faces on OpenCV's (civicam.live.privacy).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Planes = npt.NDArray[np.uint8]


def split(planes: Planes) -> tuple[Planes, Planes, Planes]:
    """Views of the Y, U and V planes of a (H * 3/2, W) yuv420p array (H and W even)."""
    h, w = planes.shape[0] * 2 // 3, planes.shape[1]
    flat = planes.reshape(-1)
    quarter = (h // 2) * (w // 2)
    y = flat[:h * w].reshape(h, w)
    u = flat[h * w:h * w + quarter].reshape(h // 2, w // 2)
    v = flat[h * w + quarter:h * w + 2 * quarter].reshape(h // 2, w // 2)
    return y, u, v


def scale(planes: Planes, width: int, height: int) -> Planes:
    """The picture scaled to ``width`` x ``height`` (both even): area averaging when shrinking (what a
    viewer's scaler does, no aliasing), bilinear when enlarging.

    >>> scale(np.zeros((6, 4), np.uint8), 2, 2).shape
    (3, 2)
    """
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even sides, got {width}x{height}")
    y, u, v = split(planes)
    if (y.shape[1], y.shape[0]) == (width, height):
        return planes
    how = cv2.INTER_AREA if width <= y.shape[1] else cv2.INTER_LINEAR
    out = np.empty(width * height * 3 // 2, np.uint8)
    quarter = (width // 2) * (height // 2)
    half = (width // 2, height // 2)
    out[:width * height] = cv2.resize(y, (width, height), interpolation=how).reshape(-1)
    out[width * height:width * height + quarter] = cv2.resize(u, half, interpolation=how).reshape(-1)
    out[width * height + quarter:] = cv2.resize(v, half, interpolation=how).reshape(-1)
    return out.reshape(height * 3 // 2, width)

