"""Reading segment files: the init-section length, a packet-level probe, and repair of a torn partial."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

# Fragmented MP4: the fragments carry their own decode times, and the timeline is kept as written.
FMP4_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof+frag_discont",
    "avoid_negative_ts": "disabled",
    # Push each finished fragment to the file at once; otherwise its tail waits in the I/O buffer and a
    # crash (or a live player) waits a fragment longer. Fragments are written whole, one write each; the
    # recorder adds frag_duration so a fragment is a GOP or a live part of one.
    "flush_packets": "1",
}


@dataclass(frozen=True)
class SegmentProbe:
    """What a segment file holds, from its packets (nothing is decoded)."""

    duration_s: float
    frames: int
    keyframes: int
    codec: str
    width: int
    height: int
    init_bytes: int
    first_pts_s: float


def _top_level_boxes(path: str) -> Iterator[tuple[int, int, bytes]]:
    """(offset, size, type) of each top-level MP4 box, stopping at a malformed header; sizes may overrun a torn file."""
    offset = 0
    size_total = os.path.getsize(path)
    with open(path, "rb") as fh:
        while offset + 8 <= size_total:
            fh.seek(offset)
            head = fh.read(16)
            size, kind = struct.unpack(">I4s", head[:8])
            if size == 1 and len(head) >= 16:
                size = struct.unpack(">Q", head[8:16])[0]
            if size < 8:
                return
            yield offset, size, kind
            offset += size


def init_length(path: str) -> int:
    """Bytes of the top-level boxes before the first ``moof``: the init section (ftyp+moov) for HLS."""
    for offset, _size, kind in _top_level_boxes(path):
        if kind == b"moof":
            return offset
    return 0


def probe(path: str) -> SegmentProbe:
    """Demux ``path`` and count frames; raises ``av.FFmpegError`` or ValueError if it holds no video."""
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 90000)
        frames = keyframes = 0
        first: int | None = None
        last_end: int | None = None
        for packet in container.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            frames += 1
            keyframes += 1 if packet.is_keyframe else 0
            if first is None:
                first = packet.pts
            end = packet.pts + (packet.duration or 0)
            last_end = end if last_end is None else max(last_end, end)
        if first is None or last_end is None:
            raise ValueError("no video packets")
        ctx = stream.codec_context
        return SegmentProbe(float((last_end - first) * tb), frames, keyframes, ctx.name, ctx.width or 0,
                            ctx.height or 0, init_length(path), float(first * tb))


def complete_length(path: str) -> int:
    """Bytes up to the end of the last complete top-level box: where a torn fMP4 must be cut."""
    good = 0
    size_total = os.path.getsize(path)
    for offset, size, kind in _top_level_boxes(path):
        if offset + size > size_total:
            break
        # A moof alone is useless: the cut point is after a complete mdat, or after the moov header.
        if kind in (b"mdat", b"moov"):
            good = offset + size
    return good


def repair(src: str, dst: str) -> SegmentProbe | None:
    """Keep the complete fragments of a torn partial ``src`` in ``dst``; None if nothing usable remains.

    The recorder writes ftyp+moov and then moof+mdat fragments (a GOP, or a part of one of at most
    ``part_target_s``), the first starting on a keyframe and each following the ones before it, so cutting
    the file after its last complete mdat yields a valid, fully decodable segment: a crash loses at most
    the fragment being written. The demuxer cannot be trusted for this, as it hands out the
    torn last sample truncated rather than refusing it.
    """
    try:
        keep = complete_length(src)
        if keep <= init_length(src) or init_length(src) == 0:
            return None
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            left = keep
            while left > 0:
                chunk = fin.read(min(left, 1 << 20))
                if not chunk:
                    break
                fout.write(chunk)
                left -= len(chunk)
        info = probe(dst)
    except (av.FFmpegError, ValueError, OSError, struct.error):
        if os.path.exists(dst):
            os.unlink(dst)
        return None
    return info
