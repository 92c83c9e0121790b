"""The sans-I/O RTSP readers: lying lengths are errors, incomplete messages are bounded, nothing loops."""

from __future__ import annotations

import struct

import pytest

from civicam.ingest.rtp import MAX_ACCESS_UNIT, Depacketizer, FramingError, InterleavedReader
from civicam.ingest.rtsp_wire import MAX_BODY, ProtocolError, content_length, read_message


def _reader() -> tuple[InterleavedReader, list[int]]:
    got: list[int] = []
    depack = Depacketizer("h264", lambda ts, key, pieces, size: got.append(ts), {})
    return InterleavedReader(0, depack), got


@pytest.mark.parametrize(("values", "expected"), [
    ([], 0), (["0"], 0), ([" 42 "], 42), (["7", "7"], 7),
])
def test_content_length_grammar(values: list[str], expected: int) -> None:
    assert content_length(values) == expected


@pytest.mark.parametrize("values", [["-20"], ["+5"], ["0x10"], [""], ["1e3"], ["3", "4"], [str(MAX_BODY + 1)],
                                    ["99999999999999999999"], ["²"]])
def test_content_length_lies_are_errors(values: list[str]) -> None:
    with pytest.raises(ProtocolError):
        content_length(values)


def test_read_message_parts() -> None:
    raw = b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm=\"x\"\r\n\r\n$\x00"
    found = read_message(raw)
    assert found is not None
    msg, end = found
    assert (msg.status, msg.reason, msg.header("cseq"), raw[end:]) == (401, "Unauthorized", "2", b"$\x00")
    request = read_message(b"GET_PARAMETER rtsp://h/s RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    assert request is not None and request[0].method == "GET_PARAMETER" and request[0].status == 0
    for prefix in (b"", b"RT", b"RTSP/1.0 200 OK\r\nCSeq", b"RTSP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nab"):
        assert read_message(prefix) is None, prefix


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\n\r\n", b"\x00\x01garbage", b"RTSP/1.0 2000 OK\r\n\r\n",
    b"RTSP/1.0 200 OK\r\nno colon here\r\n\r\n", b"RTSP/1.0 200 OK\r\n" + b"X: y\r\n" * 20000,
])
def test_read_message_refuses_garbage(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        read_message(raw)


def test_negative_content_length_in_stream_is_an_error_not_a_loop() -> None:
    # Before: pos went backwards (end = head + 4 - 20) and the reader looped forever on the same bytes.
    reader, _ = _reader()
    with pytest.raises(FramingError, match="Content-Length"):
        reader.feed(b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Length: -20\r\n\r\n" + b"$\x00\x00\x00" * 8)


def test_huge_content_length_in_stream_is_refused_at_once() -> None:
    # Before: the reader kept every byte while waiting for a 2 GB body (28 MB after 2,000 reads).
    reader, _ = _reader()
    with pytest.raises(FramingError):
        reader.feed(b"RTSP/1.0 200 OK\r\nContent-Length: 2000000000\r\n\r\n")


def test_incomplete_message_tail_is_bounded() -> None:
    # A head that never ends: refused once it passes the cap, never buffered beyond it.
    reader, _ = _reader()
    reader.feed(b"RTSP/1.0 200 OK\r\n")
    with pytest.raises(FramingError):
        for _ in range(100):
            reader.feed(b"X-Pad: " + b"a" * 2000 + b"\r\n")
            assert len(reader._tail) <= 64 * 1024 + 4096


def test_zero_length_frame_at_the_end_of_a_chunk() -> None:
    # Before: an empty '$' frame on the RTP channel ending a chunk raised IndexError (found by fuzzing).
    reader, got = _reader()
    reader.feed(b"$\x00\x00\x00")
    reader.feed(b"$\x00\x00\x00RTSP/1.0 200 OK\r\n\r\n")
    assert got == [] and reader.replies == [200]


def test_an_access_unit_that_never_ends_is_dropped_not_kept() -> None:
    got: list[int] = []
    depack = Depacketizer("h264", lambda ts, key, pieces, size: got.append(size), {})
    reader = InterleavedReader(0, depack)
    chunk = 60000
    start = b"\x80\x60" + struct.pack(">HI", 0, 1000) + b"\x00" * 4 + b"\x7c\x85" + b"\x00" * chunk
    reader.feed(b"$\x00" + struct.pack(">H", len(start)) + start)
    for seq in range(1, MAX_ACCESS_UNIT // chunk + 10):
        mid = b"\x80\x60" + struct.pack(">HI", seq, 1000) + b"\x00" * 4 + b"\x7c\x05" + b"\x00" * chunk
        reader.feed(b"$\x00" + struct.pack(">H", len(mid)) + mid)
        assert sum(len(p) for p in depack._pieces) <= MAX_ACCESS_UNIT + chunk
    assert got == []
