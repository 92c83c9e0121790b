"""Can a camera serve mask analytics? Median face height over a window of observations."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MIN_MEDIAN_FACE_PX = 40.0  # below this the detector's recall and the classifier's accuracy drop (validation)
MIN_FACES = 20


@dataclass(frozen=True)
class Suitability:
    suitable: bool
    median_face_px: float
    faces_seen: int
    reason: str


def assess(face_heights: Iterable[float], min_median_px: float = MIN_MEDIAN_FACE_PX,
           min_faces: int = MIN_FACES) -> Suitability:
    h = np.asarray(list(face_heights), np.float64)
    if len(h) < min_faces:
        return Suitability(False, float(np.median(h)) if len(h) else 0.0, len(h),
                           f"too few faces seen ({len(h)} < {min_faces}) to judge")
    med = float(np.median(h))
    if med < min_median_px:
        return Suitability(False, med, len(h), f"median face height {med:.0f}px < {min_median_px:.0f}px: "
                           "move the camera closer to the entrance or use a longer lens")
    return Suitability(True, med, len(h), f"median face height {med:.0f}px >= {min_median_px:.0f}px")


class SuitabilityWindow:
    """Rolling window of the last ``size`` face heights of one camera (numbers only, no images)."""

    def __init__(self, size: int = 500, min_median_px: float = MIN_MEDIAN_FACE_PX,
                 min_faces: int = MIN_FACES) -> None:
        self._heights: deque[float] = deque(maxlen=size)
        self.min_median_px = min_median_px
        self.min_faces = min_faces

    def add(self, heights: Iterable[float]) -> None:
        self._heights.extend(float(x) for x in heights)

    def verdict(self) -> Suitability:
        return assess(self._heights, self.min_median_px, self.min_faces)
