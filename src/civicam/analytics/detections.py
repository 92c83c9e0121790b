"""One typed value carrying boxes (xyxy, original pixels), scores and labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def _empty_boxes() -> FloatArray:
    return np.zeros((0, 4), np.float32)


def _empty_scores() -> FloatArray:
    return np.zeros((0,), np.float32)


@dataclass(frozen=True)
class Detections:
    """``boxes`` (N, 4) float32 xyxy in original pixels, ``scores`` (N,), ``labels`` one per box, and
    ``mask_probs`` (N,): the detector's own P(mask | face) where it has one, NaN where it has not."""

    boxes: FloatArray = field(default_factory=_empty_boxes)
    scores: FloatArray = field(default_factory=_empty_scores)
    labels: tuple[str, ...] = ()
    mask_probs: FloatArray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        labels = tuple(self.labels) if self.labels else ("face",) * len(boxes)
        if len(labels) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)
        probs = (np.full(len(boxes), np.nan, np.float32) if self.mask_probs is None
                 else np.asarray(self.mask_probs, np.float32).reshape(-1))
        if len(probs) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(probs)} mask probabilities")
        object.__setattr__(self, "mask_probs", probs)

    @classmethod
    def from_lists(cls, boxes: Sequence[Sequence[float]], scores: Sequence[float],
                   labels: Sequence[str] = ()) -> Detections:
        return cls(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32), tuple(labels))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def heights(self) -> FloatArray:
        return np.asarray(self.boxes[:, 3] - self.boxes[:, 1], np.float32)

    @property
    def widths(self) -> FloatArray:
        return np.asarray(self.boxes[:, 2] - self.boxes[:, 0], np.float32)

    def select(self, keep: npt.NDArray[np.bool_] | Sequence[int]) -> Detections:
        idx = np.nonzero(np.asarray(keep))[0] if np.asarray(keep).dtype == np.bool_ else np.asarray(keep, int)
        return Detections(self.boxes[idx], self.scores[idx], tuple(self.labels[int(i)] for i in idx),
                          self.probs[idx])

    def with_labels(self, labels: Sequence[str], scores: Sequence[float] | None = None) -> Detections:
        new_scores = self.scores if scores is None else np.asarray(scores, np.float32)
        return Detections(self.boxes, new_scores, tuple(labels), self.probs)

    def clipped(self, width: int, height: int) -> Detections:
        b = self.boxes.copy()
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
        return Detections(b, self.scores, self.labels, self.probs)

    @property
    def probs(self) -> FloatArray:
        """``mask_probs`` as an array (always one after construction; typed for mypy)."""
        assert self.mask_probs is not None
        return self.mask_probs
