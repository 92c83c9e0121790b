"""The privacy oracle itself: it tells a face left as it was from one smoothed away (no detector involved)."""

from __future__ import annotations

import cv2
import numpy as np

from civicam.demo_media import portrait
from support.faces import recognisable


def _scene(face: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    img = np.full((200, 200, 3), 110, np.uint8)
    h, w = face.shape[:2]
    img[50:50 + h, 60:60 + w] = face
    return img, (60, 50, 60 + w, 50 + h)


def test_a_face_kept_or_recompressed_is_recognisable_and_a_smoothed_one_is_not() -> None:
    face = cv2.resize(portrait(False), (60, 80), interpolation=cv2.INTER_AREA)
    src, box = _scene(face)
    assert recognisable(src, src, box)
    ok, jpg = cv2.imencode(".jpg", src, [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok and recognisable(src, cv2.imdecode(jpg, cv2.IMREAD_COLOR), box)
    x1, y1, x2, y2 = box
    flat = src.copy()
    flat[y1:y2, x1:x2] = cv2.resize(cv2.resize(src[y1:y2, x1:x2], (2, 2), interpolation=cv2.INTER_AREA),
                                    (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    assert not recognisable(src, flat, box)


def test_a_faint_trace_that_correlates_is_not_a_recognisable_face() -> None:
    """Smoothed flat but for a trace of the source's detail at a few % of its amplitude: the correlation is
    perfect, the face is gone (the oracle once called this recognisable)."""
    face = cv2.resize(portrait(False), (18, 26), interpolation=cv2.INTER_AREA)
    src, box = _scene(face)
    x1, y1, x2, y2 = box
    region = src[y1:y2, x1:x2].astype(np.float32)
    mean = region.mean(axis=(0, 1), keepdims=True)
    trace = src.copy()
    trace[y1:y2, x1:x2] = np.clip(mean + 0.03 * (region - mean) + 0.5, 0, 255).astype(np.uint8)
    assert not recognisable(src, trace, box)
    assert recognisable(src, trace, box, min_energy=0.0)  # what correlation alone said
    # and the same detail at half the amplitude is a face
    strong = src.copy()
    strong[y1:y2, x1:x2] = np.clip(mean + 0.5 * (region - mean), 0, 255).astype(np.uint8)
    assert recognisable(src, strong, box)
