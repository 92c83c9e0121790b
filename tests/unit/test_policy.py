"""Table tests of the pure onboarding policy check."""

from __future__ import annotations

import pytest

from civicam.domain.policy import Measurement, Policy, evaluate

POLICY = Policy.model_validate({})


def m(
    width: int = 1280, height: int = 720, fps: float | None = 25.0, codec: str | None = "h264"
) -> Measurement:
    return Measurement(width=width, height=height, fps=fps, codec=codec, frames=50, duration_s=2.0)


@pytest.mark.parametrize(
    ("measured", "codes"),
    [
        (m(), []),
        (m(codec="hevc"), []),
        (m(1920, 1080, 15.0), []),
        (m(1280, 719), ["resolution_too_low"]),
        (m(1279, 720), ["resolution_too_low"]),
        (m(640, 480), ["resolution_too_low"]),
        (m(fps=8.0), ["fps_out_of_range"]),
        (m(fps=30.0), ["fps_out_of_range"]),
        (m(fps=None), ["fps_out_of_range"]),
        (m(codec="mjpeg"), ["unsupported_codec"]),
        (m(codec=None), ["unsupported_codec"]),
        (m(640, 480, 8.0, "mjpeg"), ["resolution_too_low", "fps_out_of_range", "unsupported_codec"]),
        (Measurement(), ["no_video"]),
        (Measurement(width=1280, height=720, fps=25.0, codec="h264", frames=0), ["no_video"]),
    ],
)
def test_evaluate_table(measured: Measurement, codes: list[str]) -> None:
    assert [r.code for r in evaluate(measured, POLICY)] == codes


@pytest.mark.parametrize(
    ("fps", "ok"),
    [
        (14.49, False),
        (14.5, True),  # min 15 minus the 0.5 tolerance is still inside (inclusive)
        (15.0, True),
        (24.97, True),
        (25.03, True),
        (25.5, True),
        (25.51, False),
    ],
)
def test_fps_tolerance_edges(fps: float, ok: bool) -> None:
    assert (evaluate(m(fps=fps), POLICY) == []) is ok


def test_zero_tolerance_makes_bounds_exact() -> None:
    strict = POLICY.merged({"fps_tolerance": 0})
    assert evaluate(m(fps=25.0), strict) == []
    assert [r.code for r in evaluate(m(fps=25.03), strict)] == ["fps_out_of_range"]


def test_messages_name_the_measured_values() -> None:
    reasons = evaluate(m(640, 480, 8.0, "mjpeg"), POLICY)
    text = " ".join(r.message for r in reasons)
    assert "640x480" in text and "8.0 fps" in text and "MJPEG" in text


def test_region_overrides_change_the_verdict() -> None:
    lenient = POLICY.merged({"min_width": 640, "min_height": 480, "codecs": ("h264", "mjpeg")})
    assert evaluate(m(640, 480, codec="mjpeg"), lenient) == []
