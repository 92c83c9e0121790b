"""A hostile RTSP camera on 127.0.0.1: onboards like a real one, streams real H.264, then misbehaves.

It answers OPTIONS, DESCRIBE (an SDP with the clip's parameter sets), SETUP (interleaved TCP) and PLAY,
streams the clip's access units as RTP (FU-A) at the clip's frame rate for ``good_s`` seconds, and then
does what ``behaviour`` says:

- ``garbage``: random bytes where interleaved frames should be;
- ``stall``: half of a frame, then silence with the connection held open;
- ``negative_length``: an in-stream RTSP reply with ``Content-Length: -20``, then more media;
- ``huge_length``: an in-stream reply announcing a 2 GB body, then endless bytes;
- ``lying_frame``: ``$`` frames whose length field is far longer than the packet that follows.

One thread per connection; ``connections`` counts them (the client's reconnects).
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

BEHAVIOURS = ("garbage", "stall", "negative_length", "huge_length", "lying_frame")
MTU = 1400


def annexb_access_units(data: bytes) -> tuple[list[list[bytes]], bytes, bytes]:
    """The access units (lists of NAL units) of an Annex-B H.264 stream, and its SPS and PPS.

    A unit ends at each slice NAL (one slice per frame, as x264 writes by default); parameter sets and
    SEI go with the slice that follows them.
    """
    nals = [n.lstrip(b"\x00") for n in data.split(b"\x00\x00\x01")]
    nals = [n.rstrip(b"\x00") if i + 1 < len(nals) else n for i, n in enumerate(nals) if n]
    units: list[list[bytes]] = []
    pending: list[bytes] = []
    sps = pps = b""
    for nal in nals:
        kind = nal[0] & 0x1F
        if kind == 7:
            sps = nal
        elif kind == 8:
            pps = nal
        pending.append(nal)
        if kind in (1, 5):
            units.append(pending)
            pending = []
    return units, sps, pps


def rtp_packets(unit: list[bytes], seq: int, ts: int) -> list[bytes]:
    """RTP packets (RFC 6184, single NAL or FU-A) for one access unit; marker on the last."""
    out: list[bytes] = []
    payloads: list[bytes] = []
    for nal in unit:
        if len(nal) <= MTU:
            payloads.append(nal)
            continue
        head, body = nal[0], nal[1:]
        chunks = [body[i:i + MTU] for i in range(0, len(body), MTU)]
        for i, chunk in enumerate(chunks):
            fu = (head & 0x1F) | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
            payloads.append(bytes(((head & 0xE0) | 28, fu)) + chunk)
    for i, payload in enumerate(payloads):
        marker = 0x80 if i == len(payloads) - 1 else 0
        out.append(struct.pack(">BBHII", 0x80, marker | 96, (seq + i) & 0xFFFF, ts & 0xFFFFFFFF, 0x1234) + payload)
    return out


def frame(packet: bytes, channel: int = 0) -> bytes:
    return b"$" + bytes((channel,)) + struct.pack(">H", len(packet)) + packet


class HostileCamera:
    """One misbehaving camera on its own port; ``url`` to register it, ``connections`` to see reconnects."""

    def __init__(self, clip: Path, behaviour: str, good_s: float = 1.0, fps: int = 25) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour, self.good_s, self.fps = behaviour, good_s, fps
        self.units, sps, pps = annexb_access_units(clip.read_bytes())
        self.sprop = f"{base64.b64encode(sps).decode()},{base64.b64encode(pps).decode()}"
        self.profile = sps[1:4].hex()
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/hostile"

    def start(self) -> Self:
        thread = threading.Thread(target=self._accept, name=f"hostile-{self.behaviour}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- server ---------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self._handshake(conn):
                    self._stream(conn)
            except OSError:
                pass  # the client hung up: what a hostile camera's client should do

    def _handshake(self, conn: socket.socket) -> bool:
        conn.settimeout(10)
        buf = b""
        while not self._stop.is_set():
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, url = lines[0].split(" ")[:2]
            cseq = next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("cseq:")), "0")
            extra, body = "", b""
            if method == "OPTIONS":
                extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
            elif method == "DESCRIBE":
                body = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                        f"a=fmtp:96 packetization-mode=1;profile-level-id={self.profile};"
                        f"sprop-parameter-sets={self.sprop}\r\na=control:track1\r\n").encode()
                extra = f"Content-Base: {url}/\r\nContent-Type: application/sdp\r\n"
            elif method == "SETUP":
                extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678;timeout=60\r\n"
            elif method == "PLAY":
                extra = "Session: 12345678\r\n"
            reply = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
            conn.sendall(reply.encode() + body)
            if method == "PLAY":
                return True
        return False

    def _stream(self, conn: socket.socket) -> None:
        period = 1.0 / self.fps
        began = time.monotonic()
        seq, n = 0, 0
        while not self._stop.is_set() and time.monotonic() - began < self.good_s:
            packets = rtp_packets(self.units[n % len(self.units)], seq, n * 90000 // self.fps)
            seq += len(packets)
            conn.sendall(b"".join(frame(p) for p in packets))
            n += 1
            self._stop.wait(max(0.0, began + n * period - time.monotonic()))
        conn.settimeout(2)
        rng_bytes = os.urandom(64 * 1024)
        if self.behaviour == "stall":
            packet = rtp_packets(self.units[n % len(self.units)], seq, n * 90000 // self.fps)[0]
            conn.sendall(frame(packet)[:len(packet) // 2])
            self._stop.wait(60)
            return
        if self.behaviour == "negative_length":
            conn.sendall(b"RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Length: -20\r\n\r\n")
        elif self.behaviour == "huge_length":
            conn.sendall(b"RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Length: 2000000000\r\n\r\n")
        while not self._stop.is_set():
            if self.behaviour == "garbage" or self.behaviour == "huge_length":
                conn.sendall(rng_bytes)
            elif self.behaviour == "lying_frame":
                packet = rtp_packets(self.units[n % len(self.units)], seq, n * 90000 // self.fps)[0]
                conn.sendall(b"$\x00\xff\xff" + packet[:500])
            else:  # negative_length: carry on streaming as if nothing happened
                packets = rtp_packets(self.units[n % len(self.units)], seq, n * 90000 // self.fps)
                seq += len(packets)
                conn.sendall(b"".join(frame(p) for p in packets))
            n += 1
            self._stop.wait(period)
