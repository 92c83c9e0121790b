"""RTSP-interleaved RTP framing and H.264/H.265 depacketisation (RFC 2326 §10.12, RFC 6184, RFC 7798)."""

from __future__ import annotations

import struct
from collections.abc import Callable

from civicam.ingest.rtsp_wire import ProtocolError, read_message

# One access unit: (RTP timestamp, is keyframe, sample pieces in MP4 length-prefixed form, sample size).
# The pieces are 4-byte big-endian NAL lengths and NAL bodies, joined into the mdat once per GOP. They are
# ``bytes`` slices, not memoryviews: a memoryview is tracked by the garbage collector, and a few seconds of
# buffered GOPs for hundreds of cameras made every collection walk hundreds of thousands of them (28% of
# the engine's CPU in py-spy); copying a ~1.4 kB slice is far cheaper than that.
AccessUnitSink = Callable[[int, bool, list[bytes], int], None]

_HDR = struct.Struct(">HI")  # RTP sequence number and timestamp, after the first two header bytes
_LEN = struct.Struct(">I")
MAX_RTSP_MESSAGE = 64 * 1024  # an RTSP reply in the middle of the media stream; anything bigger is garbage
# One access unit; a 4K keyframe is a few MB. A peer that never ends one (no marker, no new timestamp, a
# fragmented NAL without its end) would otherwise grow it without bound: it is dropped as damaged.
MAX_ACCESS_UNIT = 16 * 1024 * 1024

H264_PARAM_TYPES = (7, 8)  # SPS, PPS
H265_PARAM_TYPES = (32, 33, 34)  # VPS, SPS, PPS


class FramingError(ProtocolError):
    """The byte stream is not RTSP-interleaved RTP (a broken or hostile peer)."""


class Depacketizer:
    """Rebuilds access units from one RTP video stream of H.264 or H.265.

    An access unit ends at the marker bit or when the timestamp changes (some cameras omit the marker).
    A sequence-number gap (impossible over TCP unless the camera drops) discards the access unit in
    progress rather than emitting a damaged sample.
    """

    def __init__(self, codec: str, sink: AccessUnitSink, params: dict[int, bytes]) -> None:
        if codec not in ("h264", "hevc"):
            raise ValueError(f"unsupported codec {codec!r}")
        self.hevc = codec == "hevc"
        self._sink = sink
        # Latest parameter sets by NAL type, from the SDP and then in-band: the next init section uses them.
        self.params = params
        self._param_types = H265_PARAM_TYPES if self.hevc else H264_PARAM_TYPES
        self._ts = -1
        self._pieces: list[bytes] = []
        self._size = 0
        self._key = False
        self._damaged = False
        self._fu_at = -1  # index of the length placeholder of the fragmented NAL in progress, -1 if none
        self._fu_size = 0
        self._seq = -1
        self._fu_kind = 0
        self.access_units = 0
        self.dropped = 0

    # -- per packet ------------------------------------------------------------------------------------

    def packet(self, buf: bytes, start: int, end: int) -> None:
        """One RTP packet at ``buf[start:end]``."""
        if end - start < 12:
            return
        b0 = buf[start]
        if b0 >> 6 != 2:
            return  # not RTP version 2
        b1 = buf[start + 1]
        seq, ts = _HDR.unpack_from(buf, start + 2)
        pos = start + 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if pos + 4 > end:
                return
            pos += 4 + 4 * ((buf[pos + 2] << 8) | buf[pos + 3])
        if b0 & 0x20:  # padding: the last byte says how much
            end -= buf[end - 1]
        if pos >= end:
            return
        if ts != self._ts:
            if self._pieces:
                self._emit()
            self._ts = ts
        if self._seq >= 0 and seq != (self._seq + 1) & 0xFFFF:
            self._damaged = True
        self._seq = seq
        if self.hevc:
            self._h265(buf, pos, end)
        else:
            self._h264(buf, pos, end)
        if b1 & 0x80:
            self._emit()

    def _overflow(self) -> None:
        """Drop the access unit in progress: it outgrew ``MAX_ACCESS_UNIT``."""
        self._pieces, self._size, self._fu_at, self._fu_size = [], 0, -1, 0
        self._damaged = True

    def _nal(self, buf: bytes, pos: int, end: int, kind: int) -> None:
        if self._size + end - pos > MAX_ACCESS_UNIT:
            self._overflow()
            return
        self._pieces.append(_LEN.pack(end - pos))
        self._pieces.append(buf[pos:end])
        self._size += 4 + end - pos
        if kind in self._param_types:
            self.params[kind] = bytes(buf[pos:end])

    def _h264(self, buf: bytes, pos: int, end: int) -> None:
        ind = buf[pos]
        kind = ind & 0x1F
        if 1 <= kind <= 23:
            if kind == 5:
                self._key = True
            self._nal(buf, pos, end, kind)
        elif kind == 28:  # FU-A: indicator, FU header (S, E, R, type), fragment
            if pos + 2 > end:
                return
            fu = buf[pos + 1]
            inner = fu & 0x1F
            if fu & 0x80:
                self._fu_start(bytes(((ind & 0xE0) | inner,)), inner)
                if inner == 5:
                    self._key = True
            self._fu_part(buf, pos + 2, end, fu & 0x40)
        elif kind == 24:  # STAP-A: 16-bit size + NAL, repeated
            pos += 1
            while pos + 2 <= end:
                size = (buf[pos] << 8) | buf[pos + 1]
                pos += 2
                if size == 0 or pos + size > end:
                    break
                inner = buf[pos] & 0x1F
                if inner == 5:
                    self._key = True
                self._nal(buf, pos, pos + size, inner)
                pos += size
        # Other types (STAP-B, MTAP, FU-B) are not used in non-interleaved mode; they are skipped.

    def _h265(self, buf: bytes, pos: int, end: int) -> None:
        if pos + 2 > end:
            return
        kind = (buf[pos] >> 1) & 0x3F
        if kind < 48:
            if 16 <= kind <= 21:
                self._key = True
            self._nal(buf, pos, end, kind)
        elif kind == 49:  # FU: 2-byte payload header, FU header (S, E, type), fragment
            if pos + 3 > end:
                return
            fu = buf[pos + 2]
            inner = fu & 0x3F
            if fu & 0x80:
                self._fu_start(bytes(((buf[pos] & 0x81) | (inner << 1), buf[pos + 1])), inner)
                if 16 <= inner <= 21:
                    self._key = True
            self._fu_part(buf, pos + 3, end, fu & 0x40)
        elif kind == 48:  # AP: 16-bit size + NAL, repeated (no DONL: sprop-max-don-diff is not supported)
            pos += 2
            while pos + 2 <= end:
                size = (buf[pos] << 8) | buf[pos + 1]
                pos += 2
                if size < 2 or pos + size > end:
                    break
                inner = (buf[pos] >> 1) & 0x3F
                if 16 <= inner <= 21:
                    self._key = True
                self._nal(buf, pos, pos + size, inner)
                pos += size

    def _fu_start(self, header: bytes, kind: int) -> None:
        if self._fu_at >= 0:
            self._damaged = True  # a new start before the end of the previous fragmented NAL
        self._fu_at = len(self._pieces)
        self._pieces.append(b"")  # the NAL length, known at its end
        self._pieces.append(header)
        self._fu_size = len(header)
        self._fu_kind = kind

    def _fu_part(self, buf: bytes, pos: int, end: int, last: int) -> None:
        if self._fu_at < 0:
            self._damaged = True  # a middle fragment whose start was lost
            return
        self._pieces.append(buf[pos:end])
        self._fu_size += end - pos
        if self._size + self._fu_size > MAX_ACCESS_UNIT:
            self._overflow()
        elif last:
            self._fu_end()

    def _fu_end(self) -> None:
        self._pieces[self._fu_at] = _LEN.pack(self._fu_size)
        self._size += 4 + self._fu_size
        if self._fu_kind in self._param_types:
            self.params[self._fu_kind] = b"".join(self._pieces[self._fu_at + 1:])
        self._fu_at = -1

    def _emit(self) -> None:
        pieces, size, key = self._pieces, self._size, self._key
        self._pieces, self._size, self._key = [], 0, False
        if self._fu_at >= 0:
            self._damaged = True  # the access unit ended inside a fragmented NAL
            self._fu_at = -1
        if self._damaged or size == 0:
            self._damaged = False
            self.dropped += 1
            return
        self.access_units += 1
        self._sink(self._ts, key, pieces, size)


class InterleavedReader:
    """Walks ``$``-framed RTSP/TCP bytes: RTP on ``channel`` goes to the depacketiser, RTSP replies are skipped.

    Chunks are fed as the socket delivers them; a frame split across two chunks is carried over. The
    carried tail is at most one frame (64 kB) or one in-band RTSP message (head and body, 64 kB each),
    so the only copy per chunk is of that tail and a lying peer cannot make it grow; bytes that are
    neither raise ``FramingError`` (a ``ProtocolError``).
    """

    def __init__(self, channel: int, depacketizer: Depacketizer,
                 rtcp: Callable[[bytes], None] | None = None) -> None:
        self.channel = channel
        self.rtcp = rtcp  # gets each RTCP packet (the channel after the RTP one), e.g. sender reports
        self.depack = depacketizer
        self._tail = b""
        # Status codes (or methods) of the RTSP messages seen in-band (keep-alive answers), the last 8.
        self.replies: list[int | str] = []

    def feed(self, data: bytes) -> None:
        buf = self._tail + data if self._tail else data
        n = len(buf)
        pos = 0
        channel = self.channel
        d = self.depack
        packet = d.packet
        pieces_list: list[bytes] = []
        pieces_append = pieces_list.append
        fu_type = 49 if d.hevc else 28
        fu_skip = 3 if d.hevc else 2
        unpack = _HDR.unpack_from
        while n - pos >= 4:
            if buf[pos] == 0x24:  # '$'
                end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if end > n:
                    break
                if buf[pos + 1] == channel and end - pos > 4:
                    p = pos + 4
                    # Fast path, inlined because it is most packets of a video stream: a plain RTP header
                    # (no CSRC, extension or padding) carrying a middle or last FU fragment of the NAL in
                    # progress, in sequence and in the same access unit. Anything else takes packet().
                    if buf[p] == 0x80 and d._fu_at >= 0 and end - p > 12 + fu_skip:
                        seq, ts = unpack(buf, p + 2)
                        q = p + 12
                        fu = buf[q + fu_skip - 1]
                        if (ts == d._ts and seq == (d._seq + 1) & 0xFFFF and not fu & 0x80
                                and ((buf[q] >> 1) & 0x3F if d.hevc else buf[q] & 0x1F) == fu_type):
                            d._seq = seq
                            if d._pieces is not pieces_list:  # a new access unit started since
                                pieces_list = d._pieces
                                pieces_append = pieces_list.append
                            pieces_append(buf[q + fu_skip:end])
                            d._fu_size += end - q - fu_skip
                            if d._size + d._fu_size > MAX_ACCESS_UNIT:
                                d._overflow()
                            elif fu & 0x40:
                                d._fu_end()
                            if buf[p + 1] & 0x80:
                                d._emit()
                            pos = end
                            continue
                    packet(buf, p, end)
                elif buf[pos + 1] == channel + 1 and self.rtcp is not None:
                    self.rtcp(bytes(buf[pos + 4:end]))
                pos = end
            else:
                # An RTSP message in the stream (a keep-alive answer, a server request): read by the same
                # total parser as the control connection, so a lying Content-Length is an error, and what
                # waits in the tail is capped at one head plus one body.
                try:
                    found = read_message(buf, pos, max_head=MAX_RTSP_MESSAGE, max_body=MAX_RTSP_MESSAGE)
                except ProtocolError as exc:
                    raise FramingError(f"in-stream RTSP message: {exc}") from None
                if found is None:
                    break
                message, pos = found
                self.replies.append(message.status or message.method)
                del self.replies[:-8]
        self._tail = bytes(buf[pos:]) if pos < n else b""
