"""Camera stream URLs: validation, splitting credentials out, and redaction for logs and screens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SCHEMES = ("rtsp", "rtsps", "http", "https", "file")


class InvalidStreamURL(ValueError):
    """The text is not a stream URL civicam can open."""


# Query parameters that carry credentials on cameras that take them in the URL (``?user=..&pwd=..``),
# compared case-insensitively. They are split off and redacted like ``user:pass@``.
SECRET_QUERY_KEYS = frozenset({
    "user", "username", "usr", "login", "loginuse", "pwd", "password", "passwd", "pass", "pw", "psw",
    "loginpas", "auth", "token", "access_token", "key", "apikey", "api_key", "secret",
})


@dataclass(frozen=True)
class StreamURL:
    """A stream address kept apart from its credentials, so the bare URL can be stored and shown.

    ``query_secrets``: the query's credential parameters, as given (``user=a&pwd=b``), or None.
    """

    url: str
    username: str | None = None
    password: str | None = None
    query_secrets: str | None = None


def split_query(query: str) -> tuple[str, str | None]:
    """(the query without credential parameters, those parameters or None), each in the given order.

    >>> split_query("cmd=GetMJStream&usr=admin&PWD=x&rate=0")
    ('cmd=GetMJStream&rate=0', 'usr=admin&PWD=x')
    """
    kept: list[str] = []
    secret: list[str] = []
    for piece in query.split("&") if query else []:
        key = unquote(piece.split("=", 1)[0].replace("+", " ")).strip().lower()
        (secret if key in SECRET_QUERY_KEYS else kept).append(piece)
    return "&".join(kept), "&".join(secret) or None


def parse_stream_url(text: str) -> StreamURL:
    """Validate ``text`` and move any ``user:pass@`` and query credentials (``SECRET_QUERY_KEYS``) out of it.

    >>> parse_stream_url("rtsp://admin:s3cret@127.0.0.1:8554/cam1")
    StreamURL(url='rtsp://127.0.0.1:8554/cam1', username='admin', password='s3cret', query_secrets=None)
    >>> parse_stream_url("http://10.0.0.5/video.cgi?user=admin&pwd=s3cret&rate=0").url
    'http://10.0.0.5/video.cgi?rate=0'
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
    query, secrets = split_query(parts.query)
    bare = urlunsplit((scheme, netloc, parts.path, query, ""))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return StreamURL(url=bare, username=username, password=password, query_secrets=secrets)


def with_credentials(url: str, username: str | None, password: str | None,
                     query_secrets: str | None = None) -> str:
    """The URL to hand to FFmpeg: credentials put back in, percent-encoded; query credentials appended."""
    if not username and not query_secrets:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if username:
        userinfo = quote(username, safe="")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        netloc = f"{userinfo}@{netloc}"
    query = "&".join(q for q in (parts.query, query_secrets) if q)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:" + "|".join(sorted(SECRET_QUERY_KEYS, key=len, reverse=True)) + r")=)[^&#;\s'\"<>]*",
    re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced, for logs, errors and screens.

    >>> redact("cannot open rtsp://admin:pw@10.0.0.5/stream")
    'cannot open rtsp://***@10.0.0.5/stream'
    >>> redact("GET http://10.0.0.5/v.cgi?user=admin&pwd=pw failed")
    'GET http://10.0.0.5/v.cgi?user=***&pwd=*** failed'
    """
    return _QUERY_SECRET.sub(r"\g<key>***", _USERINFO.sub(r"\g<scheme>***@", text))
