"""Settings of live entrance analytics inside the hub."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AnalyticsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Analyse accepted cameras' recordings for people and masks.")
    fps: float = Field(5.0, gt=0, le=30, description="Frames analysed per second of video.")
    workers: int = Field(1, ge=1, le=64, description="Analysis threads (onnxruntime and OpenCV release the GIL).")
    max_backlog: int = Field(
        8, ge=1, le=1000,
        description="Segments queued per camera; older ones are dropped (and counted) when analysis falls behind.",
    )
    poll_interval_s: float = Field(2.0, gt=0, description="How often new segments are looked for.")
    detector: str = Field("rfb", description="Face detector backend (see civicam.analytics.faces).")
    mirror_pass: bool = Field(
        True, description="Detect each analysed frame and its mirror image and fuse the two (rfb only): better "
        "placed boxes and fewer missed faces, AP50 +0.015-0.02 per class on mask-scenes val, for ~1.45x the "
        "detection's CPU. Off: one pass, more cameras per core.",
    )
    suitability_window: int = Field(500, ge=20, description="Face heights kept per camera for suitability.")
    min_cell_size: int = Field(
        5, ge=1, description="Aggregates leave out any camera's 15 minutes with fewer people than this (but "
        "some): such a count is a fact about one or a few people. 1: nothing is left out.",
    )
    batch_cameras: int = Field(
        1, ge=1, le=256, description="Cameras whose next segments are analysed together, their frames detected "
        "in shared network runs (a GPU node's setting); 1: each camera on its own.",
    )
    share_live_detections: bool = Field(
        True, description="Take a segment's faces from the blurred live view where it detected them already "
        "(same process, same detector) instead of decoding and detecting the segment again.",
    )
    accelerator: Literal["auto", "tensorrt", "cuda", "cpu"] = Field(
        "auto", description="onnxruntime provider for batched detection and NVDEC decoding: 'auto' takes "
        "TensorRT, then CUDA, where onnxruntime and FFmpeg have them, else the CPU.",
    )
