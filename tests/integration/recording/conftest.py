"""Fixtures for recording tests: a looping pre-encoded RTSP source (no transcoding in the server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from recording_helpers import file_mount

from support.rtsp import RtspServer, gst_rtsp_available, make_h264_file
from support.services import require


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of 1280x720@25 H.264 (~2 Mbit/s, keyframe every 2 s), looped by the server."""
    require(gst_rtsp_available(), "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    return make_h264_file(tmp_path_factory.mktemp("clips") / "clip.h264", seconds=8)


@pytest.fixture(scope="module")
def rec_server(clip: Path) -> Iterator[RtspServer]:
    with RtspServer([file_mount("/cam1", clip), file_mount("/cam2", clip)]) as server:
        yield server
