"""Onboarding policy: what a camera's measured stream must meet, and the pure check against it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Policy(BaseModel):
    """The city's stream requirements; configurable globally and per region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_width: int = Field(1280, ge=1, description="Smallest accepted frame width in pixels.")
    min_height: int = Field(720, ge=1, description="Smallest accepted frame height in pixels.")
    min_fps: float = Field(15.0, gt=0, description="Lowest accepted measured frame rate (inclusive).")
    max_fps: float = Field(25.0, gt=0, description="Highest accepted measured frame rate (inclusive).")
    codecs: tuple[str, ...] = Field(("h264", "hevc"), description="Accepted video codecs (FFmpeg names).")
    # Frame rates are measured from timestamps over a few seconds, so a 25 fps camera reads 24.97 or
    # 25.03; the tolerance keeps a camera that meets the policy from failing on rounding.
    fps_tolerance: float = Field(0.5, ge=0, description="Slack applied to both frame-rate bounds.")
    camera_networks: tuple[str, ...] | None = Field(
        None, description="Networks (CIDRs) a camera's address must lie in; None: any. Set per region to keep "
        "a region's cameras on its own camera network (checked when a camera is added and when it is probed).",
    )

    @field_validator("camera_networks")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        out = []
        for text in value:
            try:
                out.append(str(ipaddress.ip_network(text.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"'{text}' is not a network in CIDR notation (e.g. 10.20.0.0/16)") from None
        return tuple(out)

    def merged(self, overrides: dict[str, object] | None) -> Policy:
        """This policy with a region's overrides applied (unknown keys are rejected)."""
        if not overrides:
            return self
        return Policy.model_validate({**self.model_dump(), **overrides})


@dataclass(frozen=True)
class Reason:
    """One finding of a probe: a stable machine code and a sentence for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Measurement:
    """What the probe measured on the wire; None where the stream gave no basis to measure."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    codec: str | None = None
    bitrate_kbps: float | None = None
    keyframe_interval_s: float | None = None
    frames: int = 0
    duration_s: float = 0.0


# Codecs are reported under FFmpeg's names; operators know H.265 better than "hevc".
CODEC_LABELS = {"h264": "H.264", "hevc": "H.265", "mjpeg": "MJPEG", "mpeg4": "MPEG-4"}


def evaluate(measured: Measurement, policy: Policy) -> list[Reason]:
    """Every way ``measured`` falls short of ``policy``; empty when it passes.

    >>> evaluate(Measurement(width=640, height=480, fps=25, codec="h264"), Policy())[0].code
    'resolution_too_low'
    """
    reasons: list[Reason] = []
    if measured.width is None or measured.height is None or measured.frames == 0:
        return [Reason("no_video", "The stream delivered no decodable video frames.")]
    if measured.width < policy.min_width or measured.height < policy.min_height:
        reasons.append(
            Reason(
                "resolution_too_low",
                f"Resolution {measured.width}x{measured.height} is below the required "
                f"{policy.min_width}x{policy.min_height}.",
            )
        )
    fps = measured.fps
    if fps is None or not (policy.min_fps - policy.fps_tolerance <= fps <= policy.max_fps + policy.fps_tolerance):
        shown = "unmeasurable" if fps is None else f"{fps:.1f} fps"
        reasons.append(
            Reason(
                "fps_out_of_range",
                f"Measured frame rate {shown} is outside {policy.min_fps:g}-{policy.max_fps:g} fps.",
            )
        )
    if measured.codec not in policy.codecs:
        allowed = ", ".join(CODEC_LABELS.get(c, c) for c in policy.codecs)
        got = CODEC_LABELS.get(measured.codec or "", measured.codec or "unknown")
        reasons.append(Reason("unsupported_codec", f"Codec {got} is not accepted (allowed: {allowed})."))
    return reasons
