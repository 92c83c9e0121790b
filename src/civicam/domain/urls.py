"""Camera stream URLs: validation, splitting credentials out, and redaction for logs and screens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SCHEMES = ("rtsp", "rtsps", "http", "https", "file")


class InvalidStreamURL(ValueError):
    """The text is not a stream URL civicam can open."""


@dataclass(frozen=True)
class StreamURL:
    """A stream address kept apart from its credentials, so the bare URL can be stored and shown."""

    url: str
    username: str | None = None
    password: str | None = None


def parse_stream_url(text: str) -> StreamURL:
    """Validate ``text`` and move any ``user:pass@`` out of it.

    >>> parse_stream_url("rtsp://admin:s3cret@127.0.0.1:8554/cam1")
    StreamURL(url='rtsp://127.0.0.1:8554/cam1', username='admin', password='s3cret')
    >>> parse_stream_url("/videos/door.mp4").url
    'file:///videos/door.mp4'
    """
    text = text.strip()
    if not text:
        raise InvalidStreamURL("The stream URL is empty.")
    if re.search(r"\s", text):
        raise InvalidStreamURL("The stream URL contains whitespace.")
    if text.startswith("/"):
        return StreamURL(url=Path(text).as_uri())
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        raise InvalidStreamURL(f"The stream URL is malformed: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = scheme or "none"
        raise InvalidStreamURL(f"Unsupported scheme '{shown}'; use one of {', '.join(SCHEMES)}.")
    if scheme == "file":
        if not parts.path:
            raise InvalidStreamURL("A file URL needs a path.")
        return StreamURL(url=urlunsplit(("file", "", parts.path, "", "")))
    if not parts.hostname:
        raise InvalidStreamURL("The stream URL has no host.")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    bare = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return StreamURL(url=bare, username=username, password=password)


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """The URL to hand to FFmpeg: credentials put back in, percent-encoded."""
    if not username:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, ""))


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced, for logs, errors and screens.

    >>> redact("cannot open rtsp://admin:pw@10.0.0.5/stream")
    'cannot open rtsp://***@10.0.0.5/stream'
    """
    return _USERINFO.sub(r"\g<scheme>***@", text)
