"""Quick resume after a short outage: a cheap TCP probe of the camera's port while the supervisor backs off.

Exponential backoff protects a camera (and the hub) from reconnect storms, but after a 12 s blip it had
grown to 11 s, so recording resumed 9 s after the camera was back. A TCP connect is far cheaper than an
RTSP handshake: for a while after the camera was last recording, its port is probed on a short interval
and the backoff is cut short on the transition from "refused/unreachable" to "accepts". A camera whose
port stays open while RTSP fails (a wrong password, a hostile peer) never sees that transition, so it
keeps the full backoff.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}


def address_of(url: str) -> tuple[str, int] | None:
    """The TCP address a camera URL connects to; None for files and URLs without a host.

    >>> address_of("rtsp://u:p@10.0.0.7/stream"), address_of("http://[::1]:8080/x"), address_of("/a.mp4")
    (('10.0.0.7', 554), ('::1', 8080), None)
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def recently_recording(seconds_since_last_segment: float | None, window_s: float) -> bool:
    """Whether a camera counts as having just dropped (probe it) rather than being long gone (back off).

    >>> recently_recording(30.0, 120.0), recently_recording(None, 120.0), recently_recording(300.0, 120.0)
    (True, False, False)
    """
    return seconds_since_last_segment is not None and 0 <= seconds_since_last_segment <= window_s


def port_open(address: tuple[str, int], timeout_s: float) -> bool:
    """Whether a TCP connection to ``address`` is accepted within ``timeout_s`` (then closed at once)."""
    try:
        with socket.create_connection(address, timeout=timeout_s):
            return True
    except OSError:
        return False


class ResumeProbe:
    """Says when a camera's port goes from closed to open; fed one probe result at a time (pure)."""

    def __init__(self) -> None:
        self.seen_closed = False

    def observe(self, is_open: bool) -> bool:
        """True when the port answers after having been seen closed: reconnect now.

        >>> p = ResumeProbe(); [p.observe(x) for x in (True, False, False, True)]
        [False, False, False, True]
        """
        if not is_open:
            self.seen_closed = True
            return False
        return self.seen_closed
