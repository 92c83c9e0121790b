"""Fuzz targets: every parser that faces the network or a file, each held to its totality contract.

A target takes arbitrary bytes and returns normally, or raises only the error its parser documents
(a protocol error, "unsupported", a bad-input ValueError). Anything else (IndexError, struct.error,
a loop, an unbounded buffer) is a crash. The same targets run under hypothesis in ``make test``
(tests/fuzz/test_fuzz_properties.py), under atheris in ``make fuzz`` (tests/fuzz/run_atheris.py), and
every crash kept in tests/fuzz/corpus/<target>/ is replayed by tests/fuzz/test_corpus.py.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

from civicam.ingest import fmp4
from civicam.ingest.clock import parse_sender_report
from civicam.ingest.rtp import Depacketizer, FramingError, InterleavedReader
from civicam.ingest.rtsp_client import RtspError, Unsupported, parse_sdp
from civicam.ingest.rtsp_wire import MAX_BODY, MAX_HEAD, ProtocolError, read_message
from civicam.live import hls
from civicam.live.edge import published_rel
from civicam.live.ranges import Unsatisfiable, byte_range
from civicam.storage import fragments, media

Target = Callable[[bytes], None]


def rtsp_reply(data: bytes) -> None:
    """A control-connection reply: one message and its end, None, or ProtocolError; never past the caps."""
    try:
        found = read_message(data)
    except ProtocolError:
        return
    if found is None:
        assert len(data) <= MAX_HEAD + 4 + MAX_BODY, "waiting for more than the caps allow"
        return
    message, end = found
    assert 0 < end <= len(data) and len(message.body) <= MAX_BODY


def interleaved(data: bytes) -> None:
    """The interleaved stream, fed in chunks cut where the first byte says: FramingError or nothing."""
    units: list[int] = []
    codec = "hevc" if data[:1] and data[0] & 1 else "h264"
    depack = Depacketizer(codec, lambda ts, key, pieces, size: units.append(size), {})
    reader = InterleavedReader(0, depack, lambda packet: None)
    step = 1 + (data[1] if len(data) > 1 else 0) * 37
    try:
        for pos in range(2, max(3, len(data)), step):
            reader.feed(data[pos:pos + step])
            # The carried tail is at most one interleaved frame or one RTSP message (head + body caps).
            assert len(reader._tail) <= 2 * 64 * 1024 + 8  # noqa: SLF001
    except FramingError:
        return


def _rtp(codec: str, data: bytes) -> None:
    got: list[tuple[int, bool, int]] = []
    depack = Depacketizer(codec, lambda ts, key, pieces, size: got.append((ts, key, size)), {})
    # The input is a run of packets, each prefixed by a one-byte length.
    pos = 0
    while pos < len(data):
        n = data[pos]
        depack.packet(data, pos + 1, min(len(data), pos + 1 + n))
        pos += 1 + n
    depack._emit()  # noqa: SLF001  (the end of the stream flushes the unit in progress)
    for _ts, _key, size in got:
        assert size > 0


def rtp_h264(data: bytes) -> None:
    """RTP depacketisation of H.264 (RFC 6184): never raises."""
    _rtp("h264", data)


def rtp_h265(data: bytes) -> None:
    """RTP depacketisation of H.265 (RFC 7798): never raises."""
    _rtp("hevc", data)


def sdp(data: bytes) -> None:
    """An SDP from DESCRIBE: a track, Unsupported, or RtspError."""
    try:
        track = parse_sdp(data.decode("utf-8", "replace"), "rtsp://127.0.0.1/s")
    except (Unsupported, RtspError):
        return
    assert track.codec in ("h264", "hevc") and 1000 <= track.clock_rate <= 10_000_000


def parameter_sets(data: bytes) -> None:
    """SPS/PPS/VPS from SDP or in-band, as the init section reads them: KeyError/ValueError only."""
    codec = "hevc" if data[:1] and data[0] & 1 else "h264"
    body = data[1:]
    thirds = [body[i::3] for i in range(3)]
    params = {7: thirds[0], 8: thirds[1]} if codec == "h264" else {32: thirds[0], 33: thirds[1], 34: thirds[2]}
    try:
        init, info = fmp4.init_segment(codec, params)
    except (KeyError, ValueError):
        return
    finally:
        assert 0 <= fmp4.reorder_depth(codec, params) <= fmp4.MAX_REORDER
    assert init[4:8] == b"ftyp" and info.width >= 0 and info.height >= 0


def mp4_boxes(data: bytes) -> None:
    """The fragment scanner over any (growing) file: an index of whole fragments inside the file."""
    index = fragments.scan(lambda offset, n: data[offset:offset + n], len(data))
    for frag in index.fragments:
        assert 0 <= frag.offset and frag.offset + frag.length <= len(data)
    assert 0 <= index.init_length <= len(data)


def crash_repair(data: bytes) -> None:
    """Start-up repair of a torn partial file: a probe of what was kept, or None; the source is untouched."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "a.mp4.partial", Path(tmp) / "a.mp4"
        src.write_bytes(data)
        media.repair(str(src), str(dst))
        assert src.read_bytes() == data


def hls_params(data: bytes) -> None:
    """What an HLS request may carry: a Range header, a part name, blocking-reload numbers."""
    text = data.decode("latin-1")
    size = int.from_bytes(data[:3].ljust(3, b"\0"), "big")
    try:
        got = byte_range(text, size)
    except Unsatisfiable:
        got = None
    if got is not None:
        assert 0 <= got[0] < got[1] <= size or (got == (0, 0) and size == 0)
    rel = published_rel(int.from_bytes(data[:2].ljust(2, b"\0"), "big"), text)
    assert rel is None or rel.endswith(text)
    if len(data) >= 6:
        last, msn, part = struct.unpack_from(">hhh", data)
        hls.reload_ready(last, {last: 3, last + 1: 1}, msn, part if part >= 0 else None)
        hls.reload_too_far(last, msn)


def rtcp(data: bytes) -> None:
    """RTCP compound packets (sender reports steer index times): a report or None."""
    report = parse_sender_report(data)
    assert report is None or 0 <= report[0] < 1 << 32


TARGETS: dict[str, Target] = {
    "rtsp_reply": rtsp_reply,
    "interleaved": interleaved,
    "rtp_h264": rtp_h264,
    "rtp_h265": rtp_h265,
    "sdp": sdp,
    "parameter_sets": parameter_sets,
    "mp4_boxes": mp4_boxes,
    "crash_repair": crash_repair,
    "hls_params": hls_params,
    "rtcp": rtcp,
}
