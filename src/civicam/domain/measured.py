"""civicam's own measured per-node figures, each with the section of docs/ it comes from (for ``civicam plan``).

Only figures measured by this project's benchmarks belong here; one that was never measured (analysing
on a GPU: no GPU was lent to the sessions that measured these) is absent, and the plan says so or takes it
as an explicit input. When a benchmark is re-run, update the figure, its source and its date together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    """One measured figure: its value, what it counts, and where in docs/ it was measured and when."""

    value: float
    unit: str
    source: str
    measured: str  # date of the run


# Recording: the native engine's CPU per stream at 200 streams recorded gap-free for 5 minutes (RTSP from
# loopback, 1280x720@25 H.264 ~2 Mbit/s, 4 s segments); the test server's own CPU is not in it.
RECORD_CPU_S_PER_STREAM_MINUTE = Measured(
    0.045, "CPU-s per stream-minute (native engine)",
    'docs/benchmarks.md "Recording", gap-free 5-minute table, N=200', "2026-12-01")

# Analytics: core time per 1280x720 frame, one thread. Every frame of a stream is decoded (H.264 has no
# cheaper way to reach the analysed ones); detection and mask labels only on the analysed frames.
DECODE_MS_PER_FRAME = Measured(
    2.7, "ms of core time to decode one 1280x720 H.264 frame",
    'docs/benchmarks.md "Analytics", row "decode (reference)"', "2026-12-02")
DETECT_AND_LABEL_MS_PER_FRAME = Measured(
    11.6, "ms of core time to detect (two passes) and label the faces of one analysed frame",
    'docs/benchmarks.md "Analytics", "decode + detect + classify" 14.3 ms minus decode 2.7 ms', "2026-12-02")
# The same section's summary, kept to check the model above against: cameras at 5 fps one core sustains.
ANALYTICS_CAMERAS_PER_CORE_AT_5_FPS = Measured(
    8.03, "cameras per core analysed at 5 fps (decoded fully at 25 fps)",
    'docs/benchmarks.md "Analytics", "Cameras ... one core sustains"', "2026-12-02")

# Index: segment rows written per core-second, the writer's and its PostgreSQL backends' CPU together,
# by the hub's Indexer (COPY into the day-partitioned index) in steady state, one writer process.
INDEX_ROWS_PER_CORE_SECOND = Measured(
    21_311, "index rows per core-second (Indexer, COPY; writer + PostgreSQL backend CPU)",
    'docs/benchmarks.md "Index at scale", "the Indexer now, steady state", 1 writer', "2026-12-01")

# The hub's default segment length (config/recording.py ``segment_target_s``): one index row per segment.
DEFAULT_SEGMENT_S = 4.0

ALL: dict[str, Measured] = {
    "recording": RECORD_CPU_S_PER_STREAM_MINUTE, "decode": DECODE_MS_PER_FRAME,
    "analysis": DETECT_AND_LABEL_MS_PER_FRAME, "analytics_check": ANALYTICS_CAMERAS_PER_CORE_AT_5_FPS,
    "index": INDEX_ROWS_PER_CORE_SECOND,
}
