"""Opening a camera's stream with PyAV: URL with credentials, transport and deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import av
from av.container import InputContainer
from av.packet import Packet
from av.video.stream import VideoStream

from civicam.domain.urls import redact, with_credentials


@dataclass(frozen=True)
class SourceSpec:
    """Everything needed to (re)open one camera; username and password kept apart from ``url``, which
    holds only the credentials some cameras take as query parameters (redacted in the repr)."""

    camera_id: int
    url: str
    username: str | None = None
    password: str | None = None
    rtsp_transport: str = "tcp"
    timeout_s: float = 8.0

    def __repr__(self) -> str:  # never let credentials reach a log line through a repr
        return f"SourceSpec(camera_id={self.camera_id}, url={redact(self.url)!r})"


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
        url = unquote(urlsplit(url).path)  # file URIs percent-encode characters such as '@' and spaces
    full = with_credentials(url, spec.username, spec.password) if "://" in url else url
    try:
        container = av.open(full, options=options, timeout=timeout)
    except av.FFmpegError as exc:
        raise SourceError(redact(str(exc)).replace(full, redact(full))) from None
    if not container.streams.video:
        container.close()
        raise SourceError("the stream has no video track")
    return container


def packets(container: InputContainer, stream: VideoStream, url: str,
            clock: Callable[[], float] = time.monotonic, wait: Callable[[float], object] = time.sleep,
            ) -> Iterator[Packet]:  # type: ignore[type-arg]
    """The stream's packets; a local file is played like a camera: in real time, looping, timestamps rising.

    Network streams arrive at the camera's pace by themselves. A file (the demo's cameras, a test clip)
    would otherwise be read in a blink and end, which a recorder anchored to wall-clock time must not see.
    """
    if not url.startswith("file://") and "://" in url:
        yield from container.demux(stream)
        return
    tb = float(stream.time_base or 0) or 1 / 90000
    rate = stream.average_rate or stream.guessed_rate
    frame_ticks = round(1 / (float(rate) * tb)) if rate else round(0.04 / tb)
    offset, first, last = 0, None, 0
    start = clock()
    while True:
        played = False
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            if first is None:
                first = packet.dts
            dts = packet.dts - first + offset
            ahead = start + dts * tb - clock()
            if ahead > 0:
                wait(ahead)  # pacing a file to real time, the way a camera delivers
            pts = packet.pts if packet.pts is not None else packet.dts
            packet.pts, packet.dts = pts - first + offset, dts
            last, played = dts, True
            yield packet
        if not played:
            return
        offset = last + frame_ticks
        container.seek(0, stream=stream)
        first = None


class SourceError(RuntimeError):
    """The stream could not be opened or read; the message is safe to log and show."""
