"""Settings of the hub on a Ray cluster: node capacity from measured figures, and the controller's pace."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from civicam.domain import measured


class ClusterSettings(BaseModel):
    """How many cameras a node takes, and how fast the controller notices and repairs."""

    model_config = ConfigDict(extra="forbid")

    streams_per_core: float = Field(
        # docs/benchmarks.md, "Recording": 200 streams gap-free and keeping up for 5 minutes on 2 cores,
        # the RTSP server included; the recorder alone used 0.15 cores for them.
        100.0, gt=0, description="Cameras one CPU core of a node records (measured: docs/benchmarks.md).",
    )
    analytics_per_core: float = Field(
        # The measured figure itself (docs/benchmarks.md "Analytics"), not a copy that a re-run leaves behind.
        measured.ANALYTICS_CAMERAS_PER_CORE_AT_5_FPS.value, gt=0,
        description="Cameras one CPU core analyses at the analytics frame rate (measured).",
    )
    analytics_per_gpu: float | None = Field(
        None, gt=0, description="Cameras one GPU analyses; not measured yet (no GPU was lent), so by default "
        "GPU nodes are counted by their CPU cores, and only a figure measured on the GPU should be set here.",
    )
    reconcile_interval_s: float = Field(1.0, gt=0, description="How often the controller compares and repairs.")
    ping_timeout_s: float = Field(
        5.0, gt=0, description="A worker silent this long is taken for dead: killed, its cameras moved.",
    )
    start_timeout_s: float = Field(120.0, gt=0, description="Longest a new worker may take to come up.")
    handover_timeout_s: float = Field(60.0, gt=0, description="Longest a worker may take to release cameras.")
    handover_ready_s: float = Field(
        15.0, ge=0, description="Make-before-break: how long a moved camera's new recorder may take to receive "
        "its stream before the old one is stopped anyway (then the handover costs a recorded gap); 0: stop "
        "first, then start (break-before-make).",
    )
