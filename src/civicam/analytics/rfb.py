"""civicam's face detector: the project's fine-tuned RFB network (ONNX, onnxruntime), decoded in numpy.

The model (``models/faces.onnx``, made by ``training/faces/train.py``; card in docs/model-card-faces.md)
knows two kinds of face, masked and unmasked, so masked faces are found as often as bare ones and each
box carries the detector's own P(mask). It takes any input whose sides are multiples of 64; a 1280x720
frame is seen at ``side`` 640 (640x384 after padding), where it finds faces down to about 16 px of
the original frame. Only boxes leave this module: no landmarks, no embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from civicam.analytics.anchors import decode, nms, priors
from civicam.analytics.detections import Detections

Frame = npt.NDArray[np.uint8]
DEFAULT_MODEL: Final = Path(__file__).resolve().parent / "models" / "faces.onnx"
ALIGN: Final = 64  # the deepest head has stride 64
PAD_VALUE: Final = 127  # normalises to ~0, what the network saw beyond image edges in training
MASK_CLASS: Final = 2  # scores: background, face, masked face
MAX_ENLARGE: Final = 2.0  # small frames are enlarged at most this much: beyond it there is nothing to gain


class RfbDetector:
    """``min_score``: least P(face of either kind); ``side``: the frame's longer side is scaled to this
    before detection (down, or up by at most ``MAX_ENLARGE``; 0 keeps the frame's size). A larger side finds
    smaller faces at about the square of the cost, the same for every frame size."""

    name = "rfb"

    def __init__(self, min_score: float = 0.5, side: int = 640, nms_iou: float = 0.4, threads: int = 1,
                 model_path: Path = DEFAULT_MODEL, providers: Sequence[str] = ("CPUExecutionProvider",),
                 max_batch: int = 16) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # providers: civicam.analytics.accel.choose_providers (CUDA or TensorRT on a GPU node, else CPU).
        self._session = ort.InferenceSession(str(model_path), opts, providers=list(providers))
        self.providers = list(self._session.get_providers())
        shape = self._session.get_inputs()[0].shape
        # A graph exported with a fixed input (the published RFB models) gets the frame stretched to it.
        self._fixed = (int(shape[3]), int(shape[2])) if all(isinstance(d, int) for d in shape[2:]) else None
        self.min_score, self.side, self.nms_iou = min_score, side, nms_iou
        if isinstance(shape[0], int):
            max_batch = 1  # a graph exported for one image at a time
        self.max_batch = max_batch

    def _input_size(self, w: int, h: int) -> tuple[float, float, int, int]:
        """(x scale, y scale, network width, network height) for a w x h frame."""
        if self._fixed is not None:
            return self._fixed[0] / w, self._fixed[1] / h, *self._fixed
        s = min(MAX_ENLARGE, self.side / max(w, h)) if self.side else 1.0
        rw, rh = max(1, round(w * s)), max(1, round(h * s))
        return s, s, -(-rw // ALIGN) * ALIGN, -(-rh // ALIGN) * ALIGN

    def detect(self, frame_bgr: Frame) -> Detections:
        return self.detect_batch([frame_bgr])[0]

    def _prepare(self, frame_bgr: Frame) -> tuple[npt.NDArray[np.float32], tuple[float, float, int, int, int, int]]:
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 frame (H, W, 3), got {frame_bgr.dtype} {frame_bgr.shape}")
        h, w = frame_bgr.shape[:2]
        sx, sy, nw, nh = self._input_size(w, h)
        rw, rh = (nw, nh) if self._fixed else (max(1, round(w * sx)), max(1, round(h * sy)))
        img = frame_bgr if (rw, rh) == (w, h) else cv2.resize(
            frame_bgr, (rw, rh), interpolation=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR)
        canvas = np.full((nh, nw, 3), PAD_VALUE, np.uint8)
        canvas[:rh, :rw] = img
        blob = cv2.dnn.blobFromImage(canvas, 1 / 128, (nw, nh), (127, 127, 127), swapRB=True)
        return np.asarray(blob, np.float32), (sx, sy, nw, nh, w, h)

    def _finish(self, scores: npt.NDArray[np.float32], offsets: npt.NDArray[np.float32],
                geometry: tuple[float, float, int, int, int, int]) -> Detections:
        sx, sy, nw, nh, w, h = geometry
        face = 1.0 - scores[:, 0]
        keep = np.nonzero(face >= self.min_score)[0]
        if not len(keep):
            return Detections()
        boxes = decode(offsets[keep], priors(nw, nh)[keep]) * np.array([nw / sx, nh / sy, nw / sx, nh / sy],
                                                                       np.float32)
        best = nms(boxes, face[keep], self.nms_iou)
        kept = keep[best]
        p_mask = scores[kept, MASK_CLASS] / np.maximum(face[kept], 1e-6)
        labels = tuple("mask" if p >= 0.5 else "no_mask" for p in p_mask)
        return Detections(boxes[best], face[kept], labels, p_mask).clipped(w, h)

    def detect_batch(self, frames: Sequence[Frame]) -> list[Detections]:
        """Faces in several frames (several cameras' frames, say) with one network run per batch.

        Frames of one network input size share a run, up to ``max_batch`` at a time: on a GPU that is
        what keeps the device busy; on a CPU it costs the same as one by one. Results are in input order.
        """
        prepared = [self._prepare(f) for f in frames]
        out: list[Detections | None] = [None] * len(frames)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (_, geometry) in enumerate(prepared):
            groups.setdefault((geometry[2], geometry[3]), []).append(i)
        for members in groups.values():
            for start in range(0, len(members), self.max_batch):
                chunk = members[start:start + self.max_batch]
                blob = np.concatenate([prepared[i][0] for i in chunk], axis=0)
                scores, offsets = self._session.run(None, {"input": blob})
                for j, i in enumerate(chunk):
                    out[i] = self._finish(scores[j], offsets[j], prepared[i][1])
        return [d if d is not None else Detections() for d in out]
