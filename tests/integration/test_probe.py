"""Onboarding probe against real streams: GStreamer RTSP mounts, dead ports and a local file."""

# The fixtures are imported by name, which ruff reads as redefinition at each use.
# ruff: noqa: F811

from __future__ import annotations

import glob
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from civicam.domain.policy import Policy
from civicam.registry.probe import ProbeResult, ProbeTarget, probe_many, probe_stream
from support.rtsp import RtspServer
from support.rtsp_fixtures import (  # noqa: F401 - fixtures are used by name
    SECURE_PASSWORD,
    SECURE_USER,
    black_hole_port,
    closed_port,
    rtsp_available,
    rtsp_server,
)

pytestmark = pytest.mark.rtsp
T = TypeVar("T")

SECONDS = 2.0  # short reads keep the suite fast; the product default stays 5 s
TIMEOUT_S = 5.0
LIMIT_S = 15.0
POLICY = Policy.model_validate({})
DATASET_VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "videos"


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def probe(
    url: str, user: str | None = None, password: str | None = None, seconds: float = SECONDS
) -> ProbeResult:
    result, elapsed = timed(lambda: probe_stream(url, user, password, POLICY, seconds, TIMEOUT_S))
    assert elapsed < LIMIT_S, f"probe of {url} took {elapsed:.1f}s"
    return result


def test_good_h264_stream_is_accepted_with_measured_rates(rtsp_server: RtspServer) -> None:
    # 4.5 s so that at least two keyframes (every 2 s) fall inside the window wherever we join the GOP.
    result = probe(rtsp_server.url("/good"), seconds=4.5)
    assert result.verdict == "accepted", result.reasons
    m = result.measured
    assert (m.width, m.height, m.codec) == (1280, 720, "h264")
    assert m.fps is not None and abs(m.fps - 25) <= 0.5
    assert m.keyframe_interval_s is not None and abs(m.keyframe_interval_s - 2.0) <= 0.2
    assert m.bitrate_kbps is not None and m.bitrate_kbps > 0
    assert result.to_dict()["measured"]["codec"] == "h264"


def test_low_resolution_is_rejected(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/small"))
    assert result.verdict == "rejected"
    assert result.codes == ("resolution_too_low",)
    assert (result.measured.width, result.measured.height) == (640, 480)


def test_low_frame_rate_is_rejected(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/slow"))
    assert result.codes == ("fps_out_of_range",)
    assert result.measured.fps is not None and abs(result.measured.fps - 8) <= 0.5


def test_h265_is_accepted(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/h265"))
    assert result.verdict == "accepted", result.reasons
    assert result.measured.codec == "hevc"


def test_mjpeg_is_an_unsupported_codec(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/mjpeg"))
    assert result.codes == ("unsupported_codec",)
    assert result.measured.codec == "mjpeg"


def test_right_credentials_are_accepted(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/secure"), SECURE_USER, SECURE_PASSWORD)
    assert result.verdict == "accepted", result.reasons


def test_wrong_credentials_fail_auth_without_leaking_them(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/secure"), SECURE_USER, "Wr0ng-Battery")
    assert result.codes == ("auth_failed",)
    assert "Wr0ng-Battery" not in str(result.to_dict())


def test_credentials_embedded_in_the_url_are_used_and_redacted(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/secure", SECURE_USER, "Wr0ng-Battery"))
    assert result.codes == ("auth_failed",)
    assert "Wr0ng-Battery" not in str(result.to_dict())


def test_missing_credentials_fail_auth(rtsp_server: RtspServer) -> None:
    assert probe(rtsp_server.url("/secure")).codes == ("auth_failed",)


def test_default_credentials_are_refused_without_connecting() -> None:
    connections: list[object] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0)
        port = listener.getsockname()[1]
        result = probe(f"rtsp://127.0.0.1:{port}/cam", "ADMIN", "admin")
        try:
            connections.append(listener.accept())
        except BlockingIOError:
            pass  # nothing in the backlog: the probe never connected
    assert result.codes == ("default_credentials",)
    assert connections == []
    assert result.measured.frames == 0


def test_open_stream_probed_with_credentials_reports_no_auth_required(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("/open"), SECURE_USER, SECURE_PASSWORD)
    assert result.codes == ("no_auth_required",)
    assert result.measured.width == 1280  # the measurement itself still succeeded


def test_closed_port_is_unreachable(closed_port: int) -> None:
    assert probe(f"rtsp://127.0.0.1:{closed_port}/cam").codes == ("unreachable",)


def test_black_hole_times_out_within_the_deadline(black_hole_port: int) -> None:
    result = probe(f"rtsp://127.0.0.1:{black_hole_port}/cam")
    assert result.codes == ("timeout",)


def test_audio_only_stream_has_no_video(rtsp_server: RtspServer) -> None:
    assert probe(rtsp_server.url("/audio")).codes == ("no_video",)


def test_local_file_is_measured_in_media_time() -> None:
    videos = sorted(glob.glob(str(DATASET_VIDEOS / "*.mp4")))
    from support.services import require

    require(bool(videos), f"sample videos under {DATASET_VIDEOS}")
    result = probe(Path(videos[0]).as_uri())
    assert result.codes == ("resolution_too_low",)
    assert (result.measured.width, result.measured.height) == (384, 288)
    assert result.measured.duration_s == pytest.approx(SECONDS, abs=0.1)


def test_probe_many_keeps_order_and_isolates_failures(rtsp_server: RtspServer, closed_port: int) -> None:
    targets = [
        ProbeTarget(rtsp_server.url("/good")),
        ProbeTarget(f"rtsp://127.0.0.1:{closed_port}/cam"),
        ProbeTarget("ftp://not-a-stream/"),
        ProbeTarget(rtsp_server.url("/small")),
    ]
    seen: list[int] = []
    lock = threading.Lock()

    def record(index: int, _result: ProbeResult) -> None:
        with lock:
            seen.append(index)

    results, elapsed = timed(
        lambda: probe_many(targets, POLICY, SECONDS, TIMEOUT_S, concurrency=4, on_result=record)
    )
    assert [r.codes for r in results] == [(), ("unreachable",), ("invalid_url",), ("resolution_too_low",)]
    assert sorted(seen) == [0, 1, 2, 3]
    assert elapsed < LIMIT_S


@pytest.fixture
def looping_file_server(tmp_path: Path, rtsp_available: bool) -> Iterator[RtspServer]:
    from support.rtsp import make_h264_file
    from support.services import require

    require(rtsp_available, "GStreamer RTSP server")
    clip = make_h264_file(tmp_path / "clip.h264", 1280, 720, 25, seconds=1, bitrate_kbps=2000)
    with RtspServer([{"path": "/loop", "source": "file", "file": str(clip), "fps": 25}]) as server:
        yield server


def test_file_source_loops_past_its_end_with_rising_timestamps(looping_file_server: RtspServer) -> None:
    # A 1 s clip measured for 3 s: only continuous, monotonic timestamps give 25 fps over ~3 s.
    result = probe(looping_file_server.url("/loop"), seconds=3.0)
    assert result.verdict == "accepted", result.reasons
    assert result.measured.duration_s > 2.5
    assert result.measured.fps is not None and abs(result.measured.fps - 25) <= 0.5
    assert result.measured.bitrate_kbps is not None and result.measured.bitrate_kbps > 1000


def test_server_restarts_on_the_same_port(looping_file_server: RtspServer) -> None:
    port = looping_file_server.port
    looping_file_server.kill()
    assert probe(looping_file_server.url("/loop")).codes == ("unreachable",)
    looping_file_server.start()
    assert looping_file_server.port == port
    assert probe(looping_file_server.url("/loop"), seconds=1.0).verdict == "accepted"
