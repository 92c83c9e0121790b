"""RTSP/1.0 control over TCP (OPTIONS, DESCRIBE, SETUP interleaved, PLAY) with Basic/Digest auth and deadlines."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from civicam.domain.urls import redact
from civicam.ingest.rtsp_wire import MAX_BODY, MAX_HEAD, ProtocolError, read_message
from civicam.ingest.sources import SourceError, SourceSpec

USER_AGENT = "civicam"
MAX_HEADER = MAX_HEAD


class RtspError(SourceError):
    """The camera refused or broke the RTSP exchange; the message never holds credentials."""


class Unsupported(Exception):
    """The stream is fine but this client cannot record it (codec, transport); use the PyAV engine."""


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else default


@dataclass
class Track:
    """The video track chosen from the SDP."""

    codec: str  # "h264" or "hevc"
    payload_type: int
    clock_rate: int
    control: str
    params: dict[int, bytes] = field(default_factory=dict)  # parameter-set NALs by NAL type


def _split_url(spec: SourceSpec) -> tuple[str, str, int, str | None, str | None]:
    parts = urlsplit(spec.url)
    if parts.scheme != "rtsp":
        raise Unsupported(f"scheme {parts.scheme!r}")
    user = spec.username if spec.username else (unquote(parts.username) if parts.username else None)
    password = spec.password if spec.username else (unquote(parts.password) if parts.password else None)
    host = parts.hostname or ""
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit(("rtsp", netloc, parts.path or "/", parts.query, ""))
    return bare, host, parts.port or 554, user, password


class _Auth:
    """Answers a 401 challenge: Digest (RFC 2617, MD5, qop=auth) preferred over Basic."""

    def __init__(self, user: str | None, password: str | None) -> None:
        self.user, self.password = user, password
        self.scheme: str | None = None
        self.params: dict[str, str] = {}
        self.nc = 0

    def challenge(self, values: list[str]) -> bool:
        """Adopt the best challenge; False if there is nothing we can answer."""
        if self.user is None:
            return False
        for value in sorted(values, key=lambda v: not v.lower().startswith("digest")):
            scheme, _, rest = value.partition(" ")
            if scheme.lower() == "digest":
                self.scheme = "digest"
                self.params = {k.lower(): v.strip('"') for k, v in
                               re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', rest)}
                return True
            if scheme.lower() == "basic":
                self.scheme = "basic"
                return True
        return False

    def header(self, method: str, uri: str) -> str | None:
        if self.scheme is None or self.user is None:
            return None
        password = self.password or ""
        if self.scheme == "basic":
            return "Basic " + base64.b64encode(f"{self.user}:{password}".encode()).decode()
        p = self.params
        realm, nonce = p.get("realm", ""), p.get("nonce", "")

        def md5(text: str) -> str:
            return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

        ha1, ha2 = md5(f"{self.user}:{realm}:{password}"), md5(f"{method}:{uri}")
        fields = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        if "auth" in [q.strip() for q in p.get("qop", "").split(",")]:
            self.nc += 1
            nc, cnonce = f"{self.nc:08x}", os.urandom(8).hex()
            response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in p:
            fields.append(f'opaque="{p["opaque"]}"')
        fields.append("algorithm=MD5")
        return "Digest " + ", ".join(fields)


def parse_sdp(sdp: str, base: str) -> Track:
    """The first H.264/H.265 video track of an SDP; raises Unsupported for any other video.

    Total over any text: a malformed SDP raises ``RtspError`` (the fuzz tests hold it to that).
    """
    media: list[list[str]] = []
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
    for block in media:
        parts = block[0][2:].split()
        if not parts or parts[0] != "video" or len(parts) < 4:
            continue
        if "TCP" in parts[2].upper() and "RTP" not in parts[2].upper():
            continue
        if not re.fullmatch(r"[0-9]{1,3}", parts[3]) or int(parts[3]) > 127:
            raise RtspError("bad SDP: payload type")
        pt = int(parts[3])
        codec, rate, control = "", 90000, ""
        fmtp: dict[str, str] = {}
        for line in block[1:]:
            if line.startswith(f"a=rtpmap:{pt} "):
                enc = line.split(" ", 1)[1].split("/")
                codec = {"H264": "h264", "H265": "hevc"}.get(enc[0].upper(), enc[0].lower())
                rate = 90000 if len(enc) < 2 else int(enc[1]) if re.fullmatch(r"[0-9]{1,8}", enc[1]) else 0
                if not 1000 <= rate <= 10_000_000:
                    raise RtspError("bad SDP: clock rate")
            elif line.startswith(f"a=fmtp:{pt} "):
                for item in line.split(" ", 1)[1].split(";"):
                    key, _, value = item.strip().partition("=")
                    fmtp[key.lower()] = value.strip()
            elif line.startswith("a=control:"):
                control = line[len("a=control:"):]
        if codec not in ("h264", "hevc"):
            raise Unsupported(f"video codec {codec or 'unknown'!r}")
        if codec == "hevc" and fmtp.get("sprop-max-don-diff", "0") not in ("", "0"):
            raise Unsupported("H.265 with decoding order numbers")
        if codec == "h264" and fmtp.get("packetization-mode", "1") not in ("0", "1"):
            raise Unsupported("H.264 interleaved packetization")
        params: dict[int, bytes] = {}
        sets = fmtp.get("sprop-parameter-sets", "").split(",") if codec == "h264" else [
            fmtp.get(k, "") for k in ("sprop-vps", "sprop-sps", "sprop-pps")]
        for text in sets:
            try:
                nal = base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), validate=False)
            except ValueError:
                continue
            if nal:
                kind = nal[0] & 0x1F if codec == "h264" else (nal[0] >> 1) & 0x3F
                params[kind] = nal
        if control.startswith(("rtsp://", "rtsps://")):
            url = control
        elif not control or control == "*":
            url = base
        else:
            url = base.rstrip("/") + "/" + control
        return Track(codec, pt, rate, url, params)
    raise Unsupported("no video track in the SDP")


@dataclass
class Session:
    """A playing RTSP session over one TCP connection, handed to the event loop."""

    sock: socket.socket
    url: str
    track: Track
    channel: int
    session_id: str
    timeout_s: float
    keepalive: str  # "GET_PARAMETER" or "OPTIONS"
    initial: bytes  # media bytes that arrived with the PLAY reply
    auth: _Auth
    cseq: int

    def request(self, method: str) -> bytes:
        """A small request (keep-alive, TEARDOWN) to send from the event loop; no reply is awaited."""
        self.cseq += 1
        lines = [f"{method} {self.url} RTSP/1.0", f"CSeq: {self.cseq}", f"User-Agent: {USER_AGENT}",
                 f"Session: {self.session_id}"]
        auth = self.auth.header(method, self.url)
        if auth:
            lines.append(f"Authorization: {auth}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Conn:
    """Blocking request/reply with a deadline per exchange."""

    def __init__(self, sock: socket.socket, timeout_s: float, auth: _Auth) -> None:
        self.sock, self.timeout_s, self.auth = sock, timeout_s, auth
        self.buf = b""
        self.cseq = 0

    def exchange(self, method: str, url: str, headers: dict[str, str]) -> Reply:
        for attempt in (0, 1):
            self.cseq += 1
            lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", f"User-Agent: {USER_AGENT}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            auth = self.auth.header(method, url)
            if auth:
                lines.append(f"Authorization: {auth}")
            deadline = time.monotonic() + self.timeout_s
            self.sock.settimeout(self.timeout_s)
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            reply = self._read_reply(deadline)
            if reply.status == 401 and attempt == 0 and self.auth.challenge(reply.headers.get("www-authenticate", [])):
                continue
            return reply
        return reply

    def _read_reply(self, deadline: float) -> Reply:
        while True:
            if self.buf.startswith(b"$"):
                raise RtspError("media data before the reply")  # not expected before PLAY is answered
            try:
                found = read_message(self.buf, max_head=MAX_HEADER, max_body=MAX_BODY)
            except ProtocolError as exc:
                raise RtspError(f"bad RTSP reply: {exc}") from None
            if found is not None:
                message, used = found
                self.buf = self.buf[used:]
                if not message.status:
                    raise RtspError(f"the camera sent a {message.method} request instead of a reply")
                return Reply(message.status, message.reason, message.headers, message.body)
            left = deadline - time.monotonic()
            if left <= 0:
                raise RtspError("no RTSP reply within the deadline")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RtspError("the camera closed the connection")
            self.buf += chunk


# Answers that mean "not like this" rather than "no": a redirect, or a method/transport/version the camera
# does not support. FFmpeg copes with more of these (redirects, UDP), so the camera goes to the PyAV engine.
_NOT_FOR_US = {400, 405, 451, 459, 461, 501, 505, 551}


def _check(reply: Reply, what: str) -> None:
    if 300 <= reply.status < 400 or reply.status in _NOT_FOR_US:
        raise Unsupported(f"{what}: {reply.status} {reply.reason}"[:200])
    if reply.status == 401:
        raise RtspError(f"{what}: authentication failed (401)")
    if reply.status != 200:
        raise RtspError(f"{what}: {reply.status} {reply.reason}"[:200])


def open_session(spec: SourceSpec) -> Session:
    """Connect, describe, set up interleaved TCP and play; every step has the spec's deadline.

    Raises Unsupported (before anything is recorded) when the PyAV engine should take this camera.
    """
    url, host, port, user, password = _split_url(spec)
    if spec.rtsp_transport != "tcp":
        raise Unsupported("UDP transport")
    auth = _Auth(user, password)
    try:
        sock = socket.create_connection((host, port), timeout=spec.timeout_s)
    except OSError as exc:
        raise RtspError(redact(f"cannot connect to {url}: {exc.strerror or exc}")) from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock, spec.timeout_s, auth)
        options = conn.exchange("OPTIONS", url, {})
        public = options.header("public").upper() if options.status == 200 else ""
        reply = conn.exchange("DESCRIBE", url, {"Accept": "application/sdp"})
        _check(reply, "DESCRIBE")
        base = reply.header("content-base") or reply.header("content-location") or url
        track = parse_sdp(reply.body.decode("utf-8", "replace"), base)
        reply = conn.exchange("SETUP", track.control, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        _check(reply, "SETUP")
        session_field = reply.header("session")
        session_id, _, rest = session_field.partition(";")
        timeout_s = 60.0
        match = re.search(r"timeout=(\d+)", rest)
        if match:
            timeout_s = max(5.0, float(match.group(1)))
        channel = 0
        match = re.search(r"interleaved=(\d+)", reply.header("transport"))
        if match:
            channel = int(match.group(1))
        if not session_id.strip():
            raise RtspError("SETUP: no session")
        play_url = base if track.control != base else track.control
        reply = conn.exchange("PLAY", play_url, {"Session": session_id.strip(), "Range": "npt=0.000-"})
        _check(reply, "PLAY")
        keepalive = "GET_PARAMETER" if "GET_PARAMETER" in public else "OPTIONS"
        return Session(sock, play_url, track, channel, session_id.strip(), timeout_s, keepalive, conn.buf, auth,
                       conn.cseq)
    except TimeoutError:
        sock.close()
        raise RtspError("no RTSP reply within the deadline") from None
    except (Unsupported, RtspError):
        sock.close()
        raise
    except (OSError, ValueError, UnicodeError) as exc:
        sock.close()
        raise RtspError(redact(f"RTSP exchange failed: {type(exc).__name__}: {exc}")) from None
