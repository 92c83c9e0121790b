"""RTSP message framing without I/O: one reply (or server request) out of a receive buffer, or None, or an error.

Every reader here is total in the h11 sense: given any bytes it either returns one complete message and
how many bytes it used, returns None because more bytes are needed (and the caller may wait for them
only while the incomplete message is under a cap), or raises ``ProtocolError``. A lying peer (a negative
or huge ``Content-Length``, a header without an end, bytes that are not RTSP) gets an error, never a loop
or a buffer that grows without bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEAD = 64 * 1024  # the status line and headers of one message
MAX_BODY = 256 * 1024  # an SDP or a GET_PARAMETER answer; cameras send a few kB

# RFC 2326 §6.1/§7.1: a status line or a request line. The reason phrase may be empty (some cameras).
_STATUS = re.compile(rb"RTSP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")
_REQUEST = re.compile(rb"([A-Z_]{3,32}) (\S{1,4096}) RTSP/(\d)\.(\d)")
# RFC 2616 §2.2 token: what a header name may be made of.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]{1,10}")
# The first bytes a message from the camera may start with (status line or one of the requests a server
# sends in-band); anything else where a message should start is garbage.
MESSAGE_STARTS = (b"RTSP/", b"ANNOUNCE ", b"GET_PARAMETER ", b"OPTIONS ", b"REDIRECT ", b"SET_PARAMETER ",
                  b"TEARDOWN ", b"PLAY_NOTIFY ")


class ProtocolError(ValueError):
    """The peer broke the RTSP grammar or a limit; the connection cannot be trusted and is closed."""


@dataclass(frozen=True)
class Message:
    """One RTSP message: a reply (``status`` > 0) or a request from the server (``method`` set)."""

    status: int
    reason: str
    method: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else default


def could_start_message(buf: bytes, pos: int = 0) -> bool:
    """Whether ``buf[pos:]`` is, so far, the start of an RTSP message (a prefix of one of its first words)."""
    head = bytes(buf[pos:pos + 14])
    return any(head.startswith(s) or s.startswith(head) for s in MESSAGE_STARTS)


def content_length(values: list[str]) -> int:
    """The body length the headers announce: digits only, all copies agreeing, at most ``MAX_BODY``.

    >>> content_length([]), content_length(["12"])
    (0, 12)
    """
    if not values:
        return 0
    lengths = set()
    for value in values:
        raw = value.strip().encode("latin-1", "replace")
        if not _DIGITS.fullmatch(raw):
            raise ProtocolError(f"bad Content-Length {value[:20]!r}")
        lengths.add(int(raw))
    if len(lengths) != 1:
        raise ProtocolError("conflicting Content-Length headers")
    length = lengths.pop()
    if length > MAX_BODY:
        raise ProtocolError(f"Content-Length {length} over the {MAX_BODY}-byte limit")
    return length


def parse_head(head: bytes) -> tuple[int, str, str, dict[str, list[str]]]:
    """Status (0 for a request), reason, method and headers of a message head (without the blank line)."""
    lines = head.split(b"\r\n")
    status, reason, method = 0, "", ""
    first = _STATUS.fullmatch(lines[0])
    if first:
        status, reason = int(first[3]), (first[4] or b"").decode("latin-1")
    else:
        request = _REQUEST.fullmatch(lines[0])
        if not request:
            raise ProtocolError("not an RTSP status or request line")
        method = request[1].decode("ascii")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name.strip()):
            raise ProtocolError("malformed RTSP header line")
        headers.setdefault(name.strip().lower().decode("ascii"), []).append(value.strip().decode("latin-1"))
    return status, reason, method, headers


def read_message(buf: bytes, pos: int = 0, *, max_head: int = MAX_HEAD,
                 max_body: int = MAX_BODY) -> tuple[Message, int] | None:
    """The message starting at ``buf[pos]`` and the offset just past it; None if it is not complete yet.

    Raises ``ProtocolError`` for bytes that cannot begin a message, a head longer than ``max_head`` or a
    body announced longer than ``max_body``, so what a caller buffers while waiting is bounded by them.

    >>> msg, end = read_message(b"RTSP/1.0 200 OK\\r\\nCSeq: 3\\r\\nContent-Length: 2\\r\\n\\r\\nhi$")
    >>> msg.status, msg.body, end
    (200, b'hi', 50)
    >>> read_message(b"RTSP/1.0 200 OK\\r\\nContent-Le") is None
    True
    """
    if not could_start_message(buf, pos):
        raise ProtocolError("bytes that are not an RTSP message")
    head_end = buf.find(b"\r\n\r\n", pos, pos + max_head + 4)
    if head_end < 0:
        if len(buf) - pos > max_head:
            raise ProtocolError(f"RTSP message head over the {max_head}-byte limit")
        return None
    status, reason, method, headers = parse_head(bytes(buf[pos:head_end]))
    length = content_length(headers.get("content-length", []))
    if length > max_body:
        raise ProtocolError(f"Content-Length {length} over the {max_body}-byte limit")
    end = head_end + 4 + length
    if end > len(buf):
        return None
    return Message(status, reason, method, headers, bytes(buf[head_end + 4:end])), end
