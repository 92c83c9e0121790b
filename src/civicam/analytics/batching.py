"""Batched detection across cameras: one detector on the best accelerator the node has, shared by all.

On a GPU node the detector runs on onnxruntime's TensorRT or CUDA provider and segments are decoded on
NVDEC; elsewhere the same path runs on the CPU provider (which is how the tests run it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import av
import onnxruntime as ort

from civicam.analytics.accel import Prefer, choose_decoder, choose_providers, uses_gpu
from civicam.analytics.detections import Detections
from civicam.analytics.faces import analytics_options, create_detector
from civicam.analytics.pipeline import Frame
from civicam.analytics.rfb import RfbDetector
from civicam.storage.backend import SegmentStore


class Batcher:
    """Detects faces in frames of many cameras in shared network runs (``RfbDetector.detect_batch``)."""

    def __init__(self, detector: str, prefer: Prefer = "auto", *, available: Sequence[str] | None = None,
                 decoders: Sequence[str] | None = None, mirror: bool = True) -> None:
        self.providers = choose_providers(ort.get_available_providers() if available is None else available, prefer)
        self.gpu = uses_gpu(self.providers)
        self._decoders = set(av.codecs_available if decoders is None else decoders)
        self._lock = threading.Lock()  # one session, one caller at a time: the batch is the parallelism
        if detector == "rfb":
            self.detector: RfbDetector | None = RfbDetector(**analytics_options(detector, mirror),
                                                            providers=self.providers)
            self._single = None
        else:
            # Other backends have no batch entry point: they detect frame by frame on the CPU.
            self.detector = None
            self._single = create_detector(detector, analytics_options(detector, mirror))

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not frames:
            return []
        with self._lock:
            if self.detector is not None:
                return self.detector.detect_batch(frames)
            assert self._single is not None
            return [self._single.detect(f) for f in frames]

    def decoder_for(self, path: str, store: SegmentStore) -> str | None:
        """NVDEC for this segment's codec on a GPU node that has it; None: software decoding."""
        if not self.gpu:
            return None
        with av.open(str(store.local_path(path))) as container:
            codec = container.streams.video[0].codec_context.name
        return choose_decoder(str(codec), self._decoders, self.gpu)
