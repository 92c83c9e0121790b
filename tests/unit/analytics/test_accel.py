"""The GPU path without a GPU: provider and decoder choice by availability, and batched detection on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from civicam.analytics.accel import CPU, CUDA, TENSORRT, batches, choose_decoder, choose_providers, uses_gpu
from civicam.analytics.batching import Batcher
from civicam.analytics.rfb import RfbDetector
from civicam.demo_media import portrait
from support.faces import Walker, background, render


@pytest.mark.parametrize(("available", "prefer", "chosen"), [
    ([TENSORRT, CUDA, CPU], "auto", [TENSORRT, CUDA, CPU]),
    ([CUDA, CPU], "auto", [CUDA, CPU]),
    (["AzureExecutionProvider", CPU], "auto", [CPU]),
    ([TENSORRT, CUDA, CPU], "cuda", [CUDA, CPU]),
    ([TENSORRT, CUDA, CPU], "cpu", [CPU]),
    ([CPU], "tensorrt", [CPU]),  # asked for, not there: the CPU, not an error
    ([], "auto", [CPU]),
])
def test_choose_providers(available: list[str], prefer: str, chosen: list[str]) -> None:
    got = choose_providers(available, prefer)  # type: ignore[arg-type]
    assert got == chosen
    assert uses_gpu(got) == (chosen[0] != CPU)


@pytest.mark.parametrize(("codec", "available", "gpu", "decoder"), [
    ("h264", {"h264", "h264_cuvid"}, True, "h264_cuvid"),
    ("hevc", {"hevc", "hevc_cuvid"}, True, "hevc_cuvid"),
    ("h264", {"h264"}, True, None),  # FFmpeg built without NVDEC
    ("h264", {"h264", "h264_cuvid"}, False, None),  # a CPU node
    ("rawvideo", {"rawvideo"}, True, None),
])
def test_choose_decoder(codec: str, available: set[str], gpu: bool, decoder: str | None) -> None:
    assert choose_decoder(codec, available, gpu) == decoder


def test_batches() -> None:
    assert batches(0, 4) == []
    assert [list(r) for r in batches(5, 2)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="at least one"):
        batches(3, 0)


def _frames() -> list[np.ndarray]:
    """Frames of three "cameras" at two sizes, with faces at known places."""
    import cv2

    out = []
    for i, (w, h) in enumerate([(1280, 720), (640, 480), (1280, 720), (640, 480), (1280, 720)]):
        face = cv2.resize(portrait(i % 2 == 1), (90, 120), interpolation=cv2.INTER_AREA)
        img, _ = render([Walker(face, 100 + 40 * i, 80, 0, 0)], 0, background())
        out.append(np.ascontiguousarray(cv2.resize(img, (w, h))))
    return out


def test_batched_detection_equals_frame_by_frame() -> None:
    frames = _frames()
    det = RfbDetector(min_score=0.3, max_batch=2)  # two sizes, chunks of 2: several runs, order kept
    one_by_one = [det.detect(f) for f in frames]
    together = det.detect_batch(frames)
    assert len(together) == len(frames)
    assert sum(len(d.scores) for d in one_by_one) >= len(frames)  # every frame has its face found
    for a, b in zip(one_by_one, together, strict=True):
        assert a.labels == b.labels
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_batcher_on_a_cpu_node() -> None:
    # What onnxruntime and FFmpeg report on a GPU node, handed in: this machine has neither, so the
    # session is made on the CPU here, and only the choice is checked for the GPU case.
    cpu = Batcher("rfb", available=["AzureExecutionProvider", CPU], decoders=["h264"])
    assert cpu.providers == [CPU] and not cpu.gpu
    frames = _frames()
    single = RfbDetector(0.3)
    assert [len(d.scores) for d in cpu.detect(frames)] == [len(single.detect(f).scores) for f in frames]
    assert cpu.detect([]) == []
