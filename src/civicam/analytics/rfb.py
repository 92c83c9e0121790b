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
from civicam.analytics.fusion import Pass, fuse, mirror_boxes

Frame = npt.NDArray[np.uint8]
DEFAULT_MODEL: Final = Path(__file__).resolve().parent / "models" / "faces.onnx"
ALIGN: Final = 64  # the deepest head has stride 64
PAD_VALUE: Final = 127  # normalises to ~0, what the network saw beyond image edges in training
MASK_CLASS: Final = 2  # scores: background, face, masked face
MAX_ENLARGE: Final = 2.0  # small frames are enlarged at most this much: beyond it there is nothing to gain


class RfbDetector:
    """``min_score``: least P(face of either kind); ``side``: the frame's longer side is scaled to this
    before detection (down, or up by at most ``MAX_ENLARGE``; 0 keeps the frame's size). A larger side finds
    smaller faces at about the square of the cost, the same for every frame size. ``flip``: detect the
    frame and its mirror image and fuse the two passes (analytics/fusion.py): boxes placed better and faces
    missed by one pass kept, AP50 +0.015-0.02 per class on mask-scenes ``val``, for a second network run."""

    name = "rfb"

    def __init__(self, min_score: float = 0.5, side: int = 640, nms_iou: float = 0.4, threads: int = 1,
                 model_path: Path = DEFAULT_MODEL, providers: Sequence[str] = ("CPUExecutionProvider",),
                 max_batch: int = 16, flip: bool = False) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # providers: civicam.analytics.accel.choose_providers (CUDA or TensorRT on a GPU node, else CPU).
        self._session = ort.InferenceSession(str(model_path), opts, providers=list(providers))
        self.providers = list(self._session.get_providers())
        shape = self._session.get_inputs()[0].shape
        # A graph exported with a fixed input (the published RFB models) gets the frame stretched to it.
        self._fixed = (int(shape[3]), int(shape[2])) if all(isinstance(d, int) for d in shape[2:]) else None
        self.min_score, self.side, self.nms_iou, self.flip = min_score, side, nms_iou, flip
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

    def _decode(self, scores: npt.NDArray[np.float32], offsets: npt.NDArray[np.float32],
                geometry: tuple[float, float, int, int, int, int], mirrored: bool, min_score: float) -> Pass:
        """One pass's faces after NMS, in original pixels (a mirrored input's boxes mirrored back)."""
        sx, sy, nw, nh, _, _ = geometry
        face = 1.0 - scores[:, 0]
        keep = np.nonzero(face >= min_score)[0]
        if not len(keep):
            return Pass(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32))
        boxes = decode(offsets[keep], priors(nw, nh)[keep]) * np.array([nw, nh, nw, nh], np.float32)
        if mirrored:
            boxes = mirror_boxes(boxes, nw)  # the mirrored canvas: the image's right edge at nw - rw
        boxes = np.asarray(boxes / np.array([sx, sy, sx, sy], np.float32), np.float32)
        best = nms(boxes, face[keep], self.nms_iou)
        kept = keep[best]
        p_mask = scores[kept, MASK_CLASS] / np.maximum(face[kept], 1e-6)
        return Pass(boxes[best], face[kept], p_mask.astype(np.float32))

    @staticmethod
    def _detections(found: Pass, geometry: tuple[float, float, int, int, int, int]) -> Detections:
        labels = tuple("mask" if p >= 0.5 else "no_mask" for p in found.mask_probs)
        return Detections(found.boxes, found.scores, labels, found.mask_probs).clipped(geometry[4], geometry[5])

    def detect_batch(self, frames: Sequence[Frame]) -> list[Detections]:
        """Faces in several frames (several cameras' frames, say) with one network run per batch.

        Frames of one network input size share a run, up to ``max_batch`` at a time: on a GPU that is
        what keeps the device busy; on a CPU it costs the same as one by one. Results are in input order.
        """
        prepared = [self._prepare(f) for f in frames]
        # (frame, mirrored) runs; a mirrored input is the same blob flipped, not prepared again.
        runs: list[tuple[int, bool]] = [(i, m) for i in range(len(frames)) for m in ((False, True) if self.flip
                                                                                   else (False,))]
        # A face seen by one pass of two keeps half its score (fusion.fuse): each pass keeps boxes down to
        # half the threshold, the fused result is held to it.
        pass_min = self.min_score / 2 if self.flip else self.min_score
        found: dict[tuple[int, bool], Pass] = {}
        # Mirrored inputs run apart from the unmirrored: one frame and its mirror as a batch of two took 1.4x
        # the time of two runs of one on the CPU here.
        groups: dict[tuple[int, int, bool], list[tuple[int, bool]]] = {}
        for run in runs:
            geometry = prepared[run[0]][1]
            groups.setdefault((geometry[2], geometry[3], run[1]), []).append(run)
        for members in groups.values():
            for start in range(0, len(members), self.max_batch):
                chunk = members[start:start + self.max_batch]
                blob = np.concatenate([prepared[i][0][:, :, :, ::-1] if m else prepared[i][0] for i, m in chunk],
                                      axis=0)
                scores, offsets = self._session.run(None, {"input": np.ascontiguousarray(blob)})
                for j, (i, m) in enumerate(chunk):
                    found[(i, m)] = self._decode(scores[j], offsets[j], prepared[i][1], m, pass_min)
        out: list[Detections] = []
        for i in range(len(frames)):
            one = fuse([found[(i, False)], found[(i, True)]]) if self.flip else found[(i, False)]
            if self.flip:
                keep = one.scores >= self.min_score
                one = Pass(one.boxes[keep], one.scores[keep], one.mask_probs[keep])
            out.append(self._detections(one, prepared[i][1]))
        return out
