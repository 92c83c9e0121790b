"""What a deployment needs (nodes, cores, GPUs, storage, bandwidth, index writes): a pure function of the
inputs and civicam's measured figures (domain/measured.py); no I/O.

Example:
    >>> p = plan(PlanInput(cameras=1000))
    >>> round(p.ingest_gbit_s, 1), p.index_rows_per_s
    (2.0, 250.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from civicam.domain import measured as m


class PlanError(ValueError):
    """An input outside what a plan can be made for."""


@dataclass(frozen=True)
class PlanInput:
    cameras: int
    bitrate_kbps: float = 2000.0
    analytics_fps: float = 5.0
    retention_days: float = 30.0
    analytics_share: float = 1.0  # share of cameras analysed (entrances, say); the rest only recorded
    source_fps: float = 25.0
    segment_s: float = m.DEFAULT_SEGMENT_S
    cores_per_node: int = 32
    utilisation: float = 0.7  # plan cores to run at most this busy: headroom for peaks and failover
    cameras_per_gpu: float | None = None  # not measured by civicam; only an explicit input uses GPUs

    def check(self) -> None:
        if self.cameras < 1:
            raise PlanError("cameras must be at least 1")
        for name in ("bitrate_kbps", "retention_days", "source_fps", "segment_s"):
            if not getattr(self, name) > 0:
                raise PlanError(f"{name} must be positive")
        if self.analytics_fps < 0 or self.analytics_fps > self.source_fps:
            raise PlanError("analytics_fps must be between 0 and the cameras' frame rate")
        if not 0 <= self.analytics_share <= 1:
            raise PlanError("analytics_share must be between 0 and 1")
        if self.cores_per_node < 1:
            raise PlanError("cores_per_node must be at least 1")
        if not 0 < self.utilisation <= 1:
            raise PlanError("utilisation must be in (0, 1]")
        if self.cameras_per_gpu is not None and not self.cameras_per_gpu > 0:
            raise PlanError("cameras_per_gpu must be positive")


@dataclass(frozen=True)
class Line:
    """One figure of the plan, how it was reached and the measured figures it rests on."""

    what: str
    value: float | None  # None: not measured, so not planned
    unit: str
    how: str
    sources: tuple[m.Measured, ...] = ()


@dataclass(frozen=True)
class Plan:
    inputs: PlanInput
    recording_cores: float
    analysed_cameras: int
    analytics_cores: float
    gpus: int | None
    index_rows_per_s: float
    index_cores: float
    nodes: int
    ingest_gbit_s: float
    ingest_gbit_s_per_node: float
    storage_bytes_per_day: float
    storage_bytes: float
    lines: list[Line] = field(default_factory=list)


def analytics_core_s_per_camera_s(source_fps: float, analytics_fps: float) -> float:
    """Core-seconds one analysed camera costs per second: every frame decoded, the analysed ones detected."""
    return (m.DECODE_MS_PER_FRAME.value * source_fps + m.DETECT_AND_LABEL_MS_PER_FRAME.value * analytics_fps) / 1000


def plan(inp: PlanInput) -> Plan:
    """The resources ``inp`` needs, from civicam's measured per-core figures; raises PlanError on bad input."""
    inp.check()
    u = inp.utilisation
    rec_cores = inp.cameras * m.RECORD_CPU_S_PER_STREAM_MINUTE.value / 60 / u
    analysed = math.ceil(inp.cameras * inp.analytics_share)
    gpus: int | None = None
    if inp.cameras_per_gpu is not None:
        gpus = math.ceil(analysed / inp.cameras_per_gpu) if analysed else 0
        ana_cores = 0.0  # inference on the GPUs; their hosts' decode is in the (unmeasured) per-GPU figure
    else:
        ana_cores = analysed * analytics_core_s_per_camera_s(inp.source_fps, inp.analytics_fps) / u
    rows_s = inp.cameras / inp.segment_s
    idx_cores = rows_s / m.INDEX_ROWS_PER_CORE_SECOND.value / u
    nodes = max(1, math.ceil((rec_cores + ana_cores) / inp.cores_per_node))
    bits_s = inp.cameras * inp.bitrate_kbps * 1000
    per_day = bits_s / 8 * 86400
    node_sources = (m.RECORD_CPU_S_PER_STREAM_MINUTE,) + (
        (m.DECODE_MS_PER_FRAME, m.DETECT_AND_LABEL_MS_PER_FRAME) if gpus is None else ())
    lines = [
        Line("recording cores", rec_cores, "cores", f"{inp.cameras:,} streams x CPU per stream / {u:.0%} busy",
             (m.RECORD_CPU_S_PER_STREAM_MINUTE,)),
        Line("analysed cameras", analysed, "cameras", f"{inp.analytics_share:.0%} of {inp.cameras:,}"),
        Line("analytics cores (CPU)", ana_cores if gpus is None else 0.0, "cores",
             f"{inp.source_fps:g} fps decoded + {inp.analytics_fps:g} fps analysed per camera / {u:.0%} busy"
             if gpus is None else "analysis on GPUs (--cameras-per-gpu)",
             (m.DECODE_MS_PER_FRAME, m.DETECT_AND_LABEL_MS_PER_FRAME) if gpus is None else ()),
        Line("GPUs", None if gpus is None else gpus, "GPUs",
             "not measured: civicam has no per-GPU figure (no GPU lent); give --cameras-per-gpu"
             if gpus is None else f"{analysed} cameras / {inp.cameras_per_gpu:g} per GPU (your figure)"),
        Line("recording + analytics nodes", nodes, "nodes", f"cores / {inp.cores_per_node} per node", node_sources),
        Line("index writes", rows_s, "rows/s", f"one row per {inp.segment_s:g} s segment per camera"),
        Line("index cores (writer + PostgreSQL)", idx_cores, "cores", f"rows/s / rows per core-second / {u:.0%} busy",
             (m.INDEX_ROWS_PER_CORE_SECOND,)),
        Line("ingest bandwidth", bits_s / 1e9, "Gbit/s", f"{inp.cameras:,} x {inp.bitrate_kbps:g} kbit/s"),
        Line("ingest per node", bits_s / 1e9 / nodes, "Gbit/s", f"over {nodes} nodes", node_sources),
        Line("storage per day", per_day, "bytes", "bitrate x 86,400 s"),
        Line("storage for retention", per_day * inp.retention_days, "bytes", f"{inp.retention_days:g} days"),
    ]
    return Plan(inp, rec_cores, analysed, ana_cores, gpus, rows_s, idx_cores, nodes, bits_s / 1e9,
                bits_s / 1e9 / nodes, per_day, per_day * inp.retention_days, lines)
