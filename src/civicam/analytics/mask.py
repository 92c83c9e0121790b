"""Mask / no-mask classifier (small CNN exported to ONNX, run with onnxruntime, batched).

Labels: ``mask``, ``no_mask``, ``unknown`` — unknown when the face is shorter than ``min_face_px``
or the top probability is below ``threshold``. The model sees 64x64 BGR crops scaled to 0..1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from civicam.analytics.detections import Detections

Frame = npt.NDArray[np.uint8]
DEFAULT_MODEL: Final = Path(__file__).resolve().parent / "models" / "mask_classifier.onnx"
CLASSES: Final = ("mask", "no_mask")
UNKNOWN: Final = "unknown"
INPUT_SIZE: Final = 64
DEFAULT_MIN_FACE_PX: Final = 20
DEFAULT_THRESHOLD: Final = 0.7


@dataclass(frozen=True)
class MaskResult:
    label: str  # "mask" | "no_mask" | "unknown"
    confidence: float  # probability of the top class (0 when the face is too small)
    probs: tuple[float, float]  # (p_mask, p_no_mask); (0, 0) when not classified


class MaskClassifier:
    def __init__(self, model_path: Path = DEFAULT_MODEL, min_face_px: int = DEFAULT_MIN_FACE_PX,
                 threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32, threads: int = 1,
                 margin: float = 0.05) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.min_face_px = min_face_px
        self.threshold = threshold
        self.batch_size = batch_size
        self.margin = margin

    def predict_crops(self, crops: Sequence[Frame]) -> npt.NDArray[np.float32]:
        """Probabilities (N, 2) for BGR face crops of any size."""
        if not crops:
            return np.zeros((0, 2), np.float32)
        x = np.stack([cv2.resize(c, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA) for c in crops])
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32) / 255.0
        out = [np.asarray(self._session.run(None, {self._input: x[i:i + self.batch_size]})[0], np.float32)
               for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out)

    def decide(self, probs: npt.NDArray[np.float32], face_height: float) -> MaskResult:
        """Turn probabilities into a label, applying the size and confidence rules."""
        p = (float(probs[0]), float(probs[1]))
        if face_height < self.min_face_px:
            return MaskResult(UNKNOWN, 0.0, (0.0, 0.0))
        top = int(np.argmax(probs))
        conf = p[top]
        return MaskResult(CLASSES[top] if conf >= self.threshold else UNKNOWN, conf, p)

    def crop(self, frame: Frame, box: npt.NDArray[np.float32]) -> Frame | None:
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
        c, d = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
        if c - a < 2 or d - b < 2:
            return None
        return np.ascontiguousarray(frame[b:d, a:c])

    def classify(self, frame: Frame, faces: Detections) -> list[MaskResult]:
        """One result per detected face, batched through the network."""
        results: list[MaskResult | None] = [None] * len(faces)
        crops: list[Frame] = []
        where: list[int] = []
        for i, (box, height) in enumerate(zip(faces.boxes, faces.heights, strict=False)):
            c = self.crop(frame, box) if height >= self.min_face_px else None
            if c is None:
                results[i] = MaskResult(UNKNOWN, 0.0, (0.0, 0.0))
            else:
                crops.append(c)
                where.append(i)
        for i, p in zip(where, self.predict_crops(crops), strict=False):
            results[i] = self.decide(p, float(faces.heights[i]))
        return [r for r in results if r is not None]
