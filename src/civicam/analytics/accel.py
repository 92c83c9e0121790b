"""Which accelerator analytics uses: onnxruntime execution providers and the video decoder, by availability.

Pure choices over what the machine reports (``onnxruntime.get_available_providers()``, PyAV's
``codecs_available``), so they are table-tested without a GPU; the callers pass the real lists.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

TENSORRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
Prefer = Literal["auto", "tensorrt", "cuda", "cpu"]
# NVDEC decoders in FFmpeg, by the codec name PyAV reports for a stream.
NVDEC = {"h264": "h264_cuvid", "hevc": "hevc_cuvid", "h265": "hevc_cuvid", "mjpeg": "mjpeg_cuvid",
         "mpeg4": "mpeg4_cuvid", "vp9": "vp9_cuvid", "av1": "av1_cuvid"}


def choose_providers(available: Sequence[str], prefer: Prefer = "auto") -> list[str]:
    """The providers to hand onnxruntime, best first, always ending with the CPU (its fallback per node).

    >>> choose_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    >>> choose_providers(["CPUExecutionProvider"], "cuda")
    ['CPUExecutionProvider']
    """
    order = {"auto": [TENSORRT, CUDA], "tensorrt": [TENSORRT, CUDA], "cuda": [CUDA], "cpu": []}[prefer]
    return [p for p in order if p in available] + [CPU]


def uses_gpu(providers: Sequence[str]) -> bool:
    return any(p in (TENSORRT, CUDA) for p in providers)


def choose_decoder(codec: str, available: Collection[str], gpu: bool) -> str | None:
    """The NVDEC decoder for ``codec`` when there is a GPU and FFmpeg has it; None: FFmpeg's software one.

    >>> choose_decoder("h264", {"h264", "h264_cuvid"}, gpu=True)
    'h264_cuvid'
    >>> choose_decoder("h264", {"h264", "h264_cuvid"}, gpu=False) is None
    True
    """
    name = NVDEC.get(codec.lower())
    return name if gpu and name is not None and name in available else None


def batches(count: int, size: int) -> list[range]:
    """Index ranges of at most ``size`` items covering ``count`` items in order.

    >>> batches(5, 2)
    [range(0, 2), range(2, 4), range(4, 5)]
    """
    if size < 1:
        raise ValueError("a batch holds at least one item")
    return [range(i, min(count, i + size)) for i in range(0, count, size)]
