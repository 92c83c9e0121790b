"""Mask / no-mask labels for detected faces, from the detector's own class, the classifier, or both.

``detector``: the face detector's P(mask | face) (no extra work; falls back to the classifier for a
detector without classes); ``classifier``: the crop classifier (civicam.analytics.mask) on each box;
``fused``: the mean of the two. Either way a face shorter than ``min_face_px`` or whose top probability
is under the threshold is ``unknown``. Which mode is the default was measured (docs/model-card-faces.md).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from civicam.analytics.detections import Detections
from civicam.analytics.mask import MaskClassifier, MaskResult

Frame = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
LABELLERS: Final = ("detector", "classifier", "fused")
DEFAULT_LABELLER: Final = "detector"


class MaskLabeller:
    def __init__(self, classifier: MaskClassifier | None = None, mode: str = DEFAULT_LABELLER) -> None:
        if mode not in LABELLERS:
            raise ValueError(f"unknown mask labeller {mode!r}; known: {', '.join(LABELLERS)}")
        self.classifier = classifier if classifier is not None else MaskClassifier()
        self.mode = mode

    def _classifier_probs(self, frame: Frame | None, faces: Detections) -> FloatArray:
        if frame is None:
            raise ValueError("the mask classifier needs the picture, not only the detections")
        crops = [self.classifier.crop(frame, b) for b in faces.boxes]
        ok = [i for i, c in enumerate(crops) if c is not None]
        out = np.full(len(faces), 0.5, np.float32)  # a box too thin to crop says nothing either way
        out[ok] = self.classifier.predict_crops([c for c in crops if c is not None])[:, 0]
        return out

    @property
    def needs_picture(self) -> bool:
        """Whether labels need the frame itself (the classifier's crops), not only a detector's classes."""
        return self.mode != "detector"

    def mask_probability(self, frame: Frame | None, faces: Detections) -> FloatArray:
        """P(mask) per face, before the size and confidence rules."""
        own = faces.probs
        if self.mode == "detector" and not np.isnan(own).any():
            return own
        theirs = self._classifier_probs(frame, faces)
        if self.mode == "classifier" or np.isnan(own).any():
            return theirs
        return np.asarray((own + theirs) / 2, np.float32)

    def classify(self, frame: Frame | None, faces: Detections) -> list[MaskResult]:
        """One result per face, in order; ``unknown`` where the face is too small or the call unsure."""
        # Only faces tall enough to be labelled are worth a classifier crop.
        big = faces.heights >= self.classifier.min_face_px
        p = np.full(len(faces), 0.5, np.float32)
        if big.any():
            p[big] = self.mask_probability(frame, faces.select(big))
        return [self.classifier.decide(np.array([q, 1 - q], np.float32), float(h))
                for q, h in zip(p, faces.heights, strict=True)]

    def labels(self, frame: Frame, faces: Detections) -> tuple[str, ...]:
        """The more likely class of every face, whatever its size (what per-class AP needs)."""
        return tuple("mask" if q >= 0.5 else "no_mask" for q in self.mask_probability(frame, faces))
