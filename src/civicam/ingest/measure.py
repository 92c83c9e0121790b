"""Open a stream with PyAV and measure what it actually delivers, classifying failures into typed errors."""

from __future__ import annotations

import errno
import socket
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import av
import av.error

from civicam.domain.policy import Measurement
from civicam.domain.urls import redact

DEFAULT_SECONDS = 5.0
DEFAULT_TIMEOUT_S = 10.0


class StreamError(Exception):
    """The stream could not be measured; the message is already redacted."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class AuthFailed(StreamError):
    """The server refused the credentials (or demanded some)."""


class Unreachable(StreamError):
    """Nothing answers at that address: refused, no route, or the name does not resolve."""


class ProbeTimeout(StreamError):
    """The server accepted the connection but delivered no video before the deadline."""


class NoVideo(StreamError):
    """The stream opened but carries no video track."""


class _OpenTimeout(ProbeTimeout):
    """Timed out before the session was set up: the control channel (TCP either way) is not answering."""


@dataclass
class _Tally:
    """Per-packet facts gathered in the demux loop; turned into a Measurement at the end."""

    pts: set[float] = field(default_factory=set)
    key_pts: set[float] = field(default_factory=set)
    bytes: int = 0
    width: int | None = None
    height: int | None = None


def measure_stream(
    url: str, seconds: float = DEFAULT_SECONDS, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Measurement:
    """Measure ``seconds`` of the stream at ``url`` (credentials may be embedded).

    Never takes much longer than ``seconds + timeout_s``. RTSP is tried over TCP first, then UDP when
    TCP fails for a reason other than credentials or reachability (which UDP cannot change, since the
    RTSP control channel is TCP either way).
    """
    deadline = time.monotonic() + seconds + timeout_s
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return _measure(_file_path(url), {}, seconds, timeout_s, deadline, live=False)
    if scheme in ("rtsp", "rtsps", "http", "https"):
        _resolve(url, min(timeout_s, 5.0))
    if scheme not in ("rtsp", "rtsps"):
        return _measure(url, _options(scheme, timeout_s), seconds, timeout_s, deadline, live=scheme != "")
    try:
        return _measure(url, _options(scheme, timeout_s, "tcp"), seconds, timeout_s, deadline, live=True)
    except (AuthFailed, Unreachable, NoVideo, _OpenTimeout):
        raise
    except StreamError as first:
        if deadline - time.monotonic() < 1.0:
            raise
        try:
            return _measure(url, _options(scheme, timeout_s, "udp"), seconds, timeout_s, deadline, live=True)
        except StreamError:
            raise first from None


def _file_path(url: str) -> str:
    return url2pathname(urlsplit(url).path)  # url2pathname also undoes the percent-encoding


def _options(scheme: str, timeout_s: float, transport: str | None = None) -> dict[str, str]:
    # FFmpeg's own socket timeout is only a backstop, one second behind PyAV's interrupt timeout: when
    # it fires first FFmpeg reports a vague "invalid data" instead of a timeout.
    micros = str(int((timeout_s + 1.0) * 1_000_000))
    # Keep stream analysis short: we measure rates ourselves, so FFmpeg need not guess them.
    opts = {"analyzeduration": "1000000", "probesize": "2000000"}
    if scheme in ("rtsp", "rtsps"):
        # FFmpeg >= 5 calls the socket I/O timeout "timeout" (microseconds); older ones "stimeout".
        opts["timeout" if _ffmpeg_major() >= 5 else "stimeout"] = micros
        if transport:
            opts["rtsp_transport"] = transport
    else:
        opts["rw_timeout"] = micros
    return opts


def _ffmpeg_major() -> int:
    try:
        return int(str(av.ffmpeg_version_info).split(".")[0].lstrip("n"))
    except ValueError:
        return 5  # unparseable (a git build): assume a current FFmpeg


def _resolve(url: str, timeout_s: float) -> None:
    """Resolve the host ourselves: FFmpeg reports a DNS failure as a bare EIO we could not classify."""
    host = urlsplit(url).hostname
    if not host:
        raise Unreachable(f"The stream URL {url} has no host.")
    outcome: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    # getaddrinfo cannot be interrupted, so it runs where a slow resolver cannot hold us past the deadline.
    worker = threading.Thread(target=lookup, name="resolve", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise ProbeTimeout(f"Resolving the host of {url} took longer than {timeout_s:g}s.")
    if outcome[0] is not None:
        raise Unreachable(f"The host of {url} does not resolve: {outcome[0]}.")


def _classify(
    exc: BaseException, url: str, waited_s: float = 0.0, timeout_s: float = float("inf")
) -> StreamError:
    """Map an FFmpeg/OS error to the typed error a probe reports."""
    text = f"Cannot open {url}: {exc}"
    if waited_s >= timeout_s * 0.9 and not isinstance(exc, (av.error.HTTPError, PermissionError)):
        # Whatever FFmpeg calls it, a failure that arrives only after the full timeout is a silent peer.
        return ProbeTimeout(f"No answer from {url} within {timeout_s:g}s ({exc}).")
    if isinstance(exc, (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError, PermissionError)):
        return AuthFailed(text)
    if isinstance(exc, (av.error.ExitError, av.error.TimeoutError, TimeoutError)):
        return ProbeTimeout(text)
    code = getattr(exc, "errno", None)
    if code in (
        errno.ECONNREFUSED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EADDRNOTAVAIL,
        errno.EHOSTDOWN,
    ):
        return Unreachable(text)
    if code == errno.ETIMEDOUT:
        return ProbeTimeout(text)
    if isinstance(exc, (av.error.FileNotFoundError, FileNotFoundError)) and not url.startswith(
        ("rtsp", "http")
    ):
        return Unreachable(text)
    return StreamError(text)


def _measure(
    target: str, options: dict[str, str], seconds: float, timeout_s: float, deadline: float, live: bool
) -> Measurement:
    shown = redact(target)
    open_timeout = max(0.5, min(timeout_s, deadline - time.monotonic()))
    started = time.monotonic()
    try:
        container = av.open(target, options=options, timeout=(open_timeout, timeout_s))
    except Exception as exc:  # noqa: BLE001 - every FFmpeg failure is classified, none may escape raw
        error = _classify(exc, shown, time.monotonic() - started, open_timeout)
        if isinstance(error, ProbeTimeout):
            raise _OpenTimeout(str(error)) from None
        raise error from None
    try:
        video = next((s for s in container.streams if s.type == "video"), None)
        if video is None:
            raise NoVideo(f"{shown} carries no video track.")
        tally = _Tally()
        try:
            _demux(container, video, tally, seconds, deadline if live else None)
        except StreamError:
            raise
        except Exception as exc:  # noqa: BLE001
            if len(tally.pts) < 2:
                raise _classify(exc, shown) from None
            # A stall or drop after frames arrived still leaves a usable (shorter) sample.
        if not tally.pts:
            raise ProbeTimeout(f"{shown} delivered no video within the deadline.")
        codec_ctx: Any = video.codec_context
        return _summarise(tally, codec_ctx.name, codec_ctx.width, codec_ctx.height)
    finally:
        container.close()


def _demux(container: Any, video: Any, tally: _Tally, seconds: float, deadline: float | None) -> None:
    time_base: Fraction = video.time_base
    decoder = video.codec_context
    first: float | None = None
    decoded = False
    for packet in container.demux(video):
        if deadline is not None and time.monotonic() > deadline:
            break
        if packet.pts is None or packet.size == 0:
            continue  # flush packets and timestamp-less fragments carry no timing information
        t = float(packet.pts * time_base)
        if first is None:
            first = t
        if t - first >= seconds:
            break
        tally.pts.add(t)
        tally.bytes += packet.size
        if packet.is_keyframe:
            tally.key_pts.add(t)
        # Decode until one frame comes out: proves the video is decodable and gives true dimensions.
        # Skip until the first keyframe, since a mid-GOP join cannot decode.
        if not decoded and tally.key_pts:
            try:
                frames = decoder.decode(packet)
            except av.error.FFmpegError:
                frames = []
            if frames:
                tally.width, tally.height = frames[0].width, frames[0].height
                decoded = True


def _summarise(tally: _Tally, codec: str, ctx_width: int, ctx_height: int) -> Measurement:
    times = sorted(tally.pts)
    n = len(times)
    span = times[-1] - times[0] if n > 1 else 0.0
    # Distinct timestamps over their span: B-frame reordering and multi-packet frames do not skew it.
    fps = (n - 1) / span if span > 0 else None
    # n frames occupy n frame durations, not the n-1 intervals between their timestamps.
    covered = n / fps if fps else 0.0
    bitrate = tally.bytes * 8 / 1000 / covered if covered > 0 else None
    keys = sorted(tally.key_pts)
    gop = (keys[-1] - keys[0]) / (len(keys) - 1) if len(keys) > 1 else None
    return Measurement(
        width=tally.width or ctx_width or None,
        height=tally.height or ctx_height or None,
        fps=round(fps, 3) if fps is not None else None,
        codec=codec,
        bitrate_kbps=round(bitrate, 1) if bitrate is not None else None,
        keyframe_interval_s=round(gop, 3) if gop is not None else None,
        frames=n,
        duration_s=round(span, 3),
    )
