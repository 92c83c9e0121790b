"""Pytest fixtures for real-stream tests: the standard RTSP mounts, a black-hole port and a closed port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from support.rtsp import Mount, RtspServer, gst_rtsp_available
from support.services import require

SECURE_USER = "operator"
SECURE_PASSWORD = "Corr3ct-Horse"


def _video(path: str, width: int = 1280, height: int = 720, fps: int = 25, codec: str = "h264") -> Mount:
    # Shared: one encoder per mount however many probes connect, which keeps a 2-core box usable.
    return {"path": path, "source": "test", "width": width, "height": height, "fps": fps,
            "codec": codec, "bitrate_kbps": 2000, "pattern": "ball", "shared": True}  # fmt: skip


STANDARD_MOUNTS: list[Mount] = [
    _video("/good"),
    _video("/small", 640, 480),
    _video("/slow", fps=8),
    _video("/h265", codec="h265"),
    _video("/mjpeg", codec="mjpeg"),
    {**_video("/secure"), "auth": {"user": SECURE_USER, "password": SECURE_PASSWORD}},
    _video("/open"),
    {"path": "/audio", "source": "audio_only", "shared": True},
    # B-frames (decode order differs from presentation order); small, so three encoders stay cheap.
    {**_video("/bframes-main", 320, 240), "bframes": 2, "profile": "main", "bitrate_kbps": 400},
    {**_video("/bframes-high", 320, 240), "bframes": 2, "profile": "high", "bitrate_kbps": 400},
    {**_video("/bframes-h265", 320, 240, codec="h265"), "bframes": 2, "bitrate_kbps": 300},
]


@pytest.fixture(scope="session")
def rtsp_available() -> bool:
    return gst_rtsp_available()


@pytest.fixture(scope="session")
def rtsp_server(rtsp_available: bool) -> Iterator[RtspServer]:
    """The suite's RTSP server with STANDARD_MOUNTS; encoders start lazily on first client."""
    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    with RtspServer(STANDARD_MOUNTS) as server:
        yield server


@pytest.fixture(scope="session")
def black_hole_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung camera)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        # Accept and hold, so the client sees an open connection rather than a full backlog.
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, name="black-hole", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        # shutdown() wakes the blocked accept(); close() alone does not on Linux.
        try:
            listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        listener.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
