"""Settings of the recorder, the retention cleaner and HLS serving."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RecordingSettings(BaseModel):
    """How segments are cut, how long they are kept, and how the recorder reconnects."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Record every accepted camera when the hub serves.")
    segment_target_s: float = Field(
        default=4.0, gt=0.5, le=60, description="Target segment length; cut at the first keyframe after it."
    )
    part_target_s: float = Field(
        # A live (LL-HLS) player trails the camera by about three parts; 0.5 s keeps it under 4 s.
        default=0.5, gt=0.1, le=5, description="Longest fragment the recorder buffers before writing it: "
        "the part length of the low-latency live playlist, and the most a crash can lose in a segment.",
    )
    quota_bytes: int = Field(
        default=0, ge=0, description="Disk quota for recordings in bytes; 0: no quota, only free space counts."
    )
    high_watermark: float = Field(
        default=0.90, gt=0, le=1, description="Fraction of the quota at which the cleaner deletes oldest segments."
    )
    low_watermark: float = Field(
        default=0.80, gt=0, le=1, description="Fraction of the quota the cleaner deletes down to once started."
    )
    min_free_bytes: int = Field(
        default=512 * 1024 * 1024, ge=0, description="Free disk space kept in reserve; below it recording pauses."
    )
    default_max_age_days: float = Field(
        default=30.0, gt=0, description="Age after which segments are deleted unless a camera/site/region rule differs."
    )
    export_max_age_days: float = Field(
        default=7.0, gt=0, description="Age after which exported clips (unblurred ones too) are deleted by the "
        "cleaner, unless an evidence hold covers their interval.",
    )
    cleaner_interval_s: float = Field(default=30.0, gt=0, description="How often the retention cleaner runs.")
    refresh_interval_s: float = Field(
        default=5.0, gt=0, description="How often the service re-reads which cameras are accepted or disabled."
    )
    backoff_min_s: float = Field(default=0.5, gt=0, description="First reconnect delay after a camera drops.")
    backoff_max_s: float = Field(
        default=30.0, gt=0, description="Longest reconnect delay (exponential backoff with jitter)."
    )
    connect_timeout_s: float = Field(default=8.0, gt=0, description="Deadline to open a stream and for each read.")
    resume_window_s: float = Field(
        default=150.0, ge=0, description="For this long after a camera was last recording, its port is probed "
        "(TCP connect) every resume_probe_s while the supervisor backs off, and it is reconnected as soon as it "
        "answers again, so a short outage costs about its own length (outages up to 2 minutes: the window covers "
        "one longest backoff beyond them); 0: backoff only.",
    )
    resume_probe_s: float = Field(
        default=0.25, gt=0, le=10, description="How often a recently recording camera's port is probed."
    )
    offline_after_s: float = Field(
        default=60.0, gt=0, description="A reconnecting camera is reported offline after this long without a stream."
    )
    rtsp_transport: str = Field(default="tcp", pattern="^(tcp|udp)$", description="RTSP transport: tcp or udp.")
    engine: Literal["pyav", "native"] = Field(
        # Native: 0.36-0.51x the PyAV engine's CPU in the same benchmark runs (docs/benchmarks.md).
        default="native",
        description="RTSP ingest: 'native' (event-driven RTSP/TCP client; PyAV fallback for streams it cannot "
        "handle) or 'pyav' (FFmpeg per camera thread).",
    )
    live_segments: int = Field(default=4, ge=2, le=20, description="Segments listed in a live HLS playlist.")
    blur_ahead_workers: int | None = Field(
        default=None, ge=0, le=32,
        description="Ignored: blurring whole segments ahead of the player was replaced by the blurred live "
        "pipeline (live/blurred_live.py); kept so that existing settings files still load.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RecordingSettings:
        if self.low_watermark > self.high_watermark:
            raise ValueError("low_watermark must not exceed high_watermark")
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError("backoff_min_s must not exceed backoff_max_s")
        return self
