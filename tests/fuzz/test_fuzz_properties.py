"""Property-based fuzzing of every network- and file-facing parser (a bounded run; ``make fuzz`` runs long).

Random bytes alone rarely get past the first check of a parser, so each target also gets inputs built
from well-formed pieces (a reply, an interleaved frame, an RTP header, an SDP line, an MP4 box) joined
and mutated. ``CIVICAM_FUZZ_EXAMPLES`` sets the examples per strategy (default: a few seconds in all).
"""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.targets import TARGETS

EXAMPLES = int(os.environ.get("CIVICAM_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="CIVICAM_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)

_reply_head = st.sampled_from([b"RTSP/1.0 200 OK", b"RTSP/1.0 401 Unauthorized", b"GET_PARAMETER * RTSP/1.0",
                               b"RTSP/1.0 200", b"ANNOUNCE rtsp://h/ RTSP/1.0"])
_header = st.tuples(st.sampled_from([b"CSeq", b"Content-Length", b"Session", b"WWW-Authenticate", b"X y"]),
                    st.one_of(st.integers(-10, 10**12).map(lambda n: str(n).encode()), st.binary(max_size=12)))
_message = st.builds(lambda head, hs, body: head + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in hs)
                     + b"\r\n" + body, _reply_head, st.lists(_header, max_size=5), st.binary(max_size=64))


def _rtp_packet(b0: int, b1: int, seq: int, ts: int, payload: bytes) -> bytes:
    return struct.pack(">BBHII", b0, b1, seq, ts, 1) + payload


_nal_head = st.sampled_from([b"\x65", b"\x41", b"\x67\x42", b"\x68", b"\x7c\x85", b"\x7c\x05", b"\x7c\x45",
                             b"\x78\x00\x02\x67\x42", b"\x26\x01", b"\x62\x01\x93", b"\x62\x01\x13", b"\x60\x01"])
_rtp = st.builds(lambda b0, b1, seq, ts, head, tail: _rtp_packet(b0, b1, seq, ts, head + tail),
                 st.sampled_from([0x80, 0x90, 0xA0, 0x81, 0x00]), st.sampled_from([0x60, 0xE0]),
                 st.integers(0, 6), st.sampled_from([0, 3600, 0xFFFFFFFF]), _nal_head, st.binary(max_size=40))
_frame = st.builds(lambda ch, pkt, lie: b"$" + bytes((ch,)) + struct.pack(">H", max(0, len(pkt) + lie) & 0xFFFF)
                   + pkt, st.sampled_from([0, 1, 2]), _rtp, st.sampled_from([0, 0, 0, -3, 5, 60000]))
_stream = st.lists(st.one_of(_frame, _message, st.binary(max_size=8)), max_size=12).map(b"".join)

_sdp_line = st.sampled_from(["m=video 0 RTP/AVP 96", "m=video 0 RTP/AVP x", "m=audio 0 RTP/AVP 0",
                             "a=rtpmap:96 H264/90000", "a=rtpmap:96 H265/0", "a=rtpmap:96 H264/abc",
                             "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IACpZTBYmI,aMljiA==",
                             "a=fmtp:96 sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAHA", "a=control:track1",
                             "a=control:rtsp://h/t", "m=video 0 TCP 96", "a=rtpmap:96 JPEG/90000"])
_sdp = st.lists(st.one_of(_sdp_line, st.text(max_size=20)), max_size=8).map(lambda ls: "\r\n".join(ls).encode())


def _box(kind: bytes, body: bytes, lie: int = 0) -> bytes:
    return struct.pack(">I4s", max(0, 8 + len(body) + lie) & 0xFFFFFFFF, kind) + body


_kind = st.sampled_from([b"ftyp", b"moov", b"moof", b"mdat", b"trak", b"mdia", b"mdhd", b"tkhd", b"mvex",
                         b"trex", b"traf", b"tfhd", b"tfdt", b"trun", b"free"])
_boxes = st.recursive(
    st.builds(_box, _kind, st.binary(max_size=40), st.sampled_from([0, 0, -8, -1, 3, 1000])),
    lambda inner: st.builds(lambda k, kids: _box(k, b"".join(kids)), _kind, st.lists(inner, max_size=4)),
    max_leaves=12)
_mp4 = st.lists(_boxes, max_size=6).map(b"".join)


def _check(name: str, data: bytes) -> None:
    TARGETS[name](data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_every_target(data: bytes) -> None:
    for name in TARGETS:
        if name != "crash_repair":  # file I/O per example: it has its own, smaller run below
            _check(name, data)


@FUZZ
@given(st.one_of(_message, st.binary(max_size=64).map(lambda b: b"RTSP/1.0 200 OK\r\n" + b)))
def test_rtsp_replies(data: bytes) -> None:
    _check("rtsp_reply", data)


@FUZZ
@given(st.tuples(st.integers(0, 255), st.integers(0, 255)), _stream)
def test_interleaved_stream(cut: tuple[int, int], data: bytes) -> None:
    _check("interleaved", bytes(cut) + data)


@FUZZ
@given(st.lists(_rtp, max_size=10))
def test_rtp_depacketisation(packets: list[bytes]) -> None:
    data = b"".join(bytes((min(255, len(p)),)) + p[:255] for p in packets)
    _check("rtp_h264", data)
    _check("rtp_h265", data)


@FUZZ
@given(_sdp)
def test_sdp(data: bytes) -> None:
    _check("sdp", data)


@FUZZ
@given(st.binary(min_size=1, max_size=96))
def test_parameter_sets(data: bytes) -> None:
    _check("parameter_sets", data)


@FUZZ
@given(_mp4)
def test_mp4_box_walker(data: bytes) -> None:
    _check("mp4_boxes", data)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
@given(_mp4)
def test_crash_repair(data: bytes) -> None:
    _check("crash_repair", data)


@FUZZ
@given(st.one_of(st.binary(max_size=40),
                 st.builds(lambda a, b: f"bytes={a}-{b}".encode(), st.integers(-5, 10**7), st.integers(-5, 10**7)),
                 st.sampled_from([b"20261122T043516.250000Z.mp4", b"20261322T043516.250000Z.mp4"])))
def test_hls_request_parameters(data: bytes) -> None:
    _check("hls_params", data)
