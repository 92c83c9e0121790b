"""Opening a camera's stream with PyAV: URL with credentials, transport and deadlines."""

from __future__ import annotations

from dataclasses import dataclass

import av
from av.container import InputContainer

from civicam.domain.urls import redact, with_credentials


@dataclass(frozen=True)
class SourceSpec:
    """Everything needed to (re)open one camera; ``url`` is the bare URL, credentials kept apart."""

    camera_id: int
    url: str
    username: str | None = None
    password: str | None = None
    rtsp_transport: str = "tcp"
    timeout_s: float = 8.0

    def __repr__(self) -> str:  # never let credentials reach a log line through a repr
        return f"SourceSpec(camera_id={self.camera_id}, url={self.url!r})"


def open_source(spec: SourceSpec) -> InputContainer:
    """Open the stream; errors carry a redacted message (no credentials)."""
    options: dict[str, str] = {}
    url = spec.url
    timeout: tuple[float, float] | None = (spec.timeout_s, spec.timeout_s)
    if url.startswith(("rtsp://", "rtsps://")):
        # The RTSP demuxer's own socket deadline (microseconds) guards against a dead camera. PyAV's
        # ``timeout`` is not used here: its interrupt callback takes the GIL on every socket wait, which
        # with hundreds of camera threads turned into tens of thousands of futex calls per second.
        options.update({"rtsp_transport": spec.rtsp_transport, "timeout": str(int(spec.timeout_s * 1e6))})
        timeout = None
    elif url.startswith("file://"):
        url = url[len("file://"):]
    full = with_credentials(url, spec.username, spec.password) if "://" in url else url
    try:
        container = av.open(full, options=options, timeout=timeout)
    except av.FFmpegError as exc:
        raise SourceError(redact(str(exc)).replace(full, redact(full))) from None
    if not container.streams.video:
        container.close()
        raise SourceError("the stream has no video track")
    return container


class SourceError(RuntimeError):
    """The stream could not be opened or read; the message is safe to log and show."""
