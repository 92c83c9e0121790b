"""Reading segment files: the init-section length, a packet-level probe, and repair of a torn partial."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from fractions import Fraction

import av

# Fragmented MP4: the fragments carry their own decode times, and the timeline is kept as written.
FMP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof+frag_discont", "avoid_negative_ts": "disabled"}


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


def init_length(path: str) -> int:
    """Bytes of the top-level boxes before the first ``moof``: the init section (ftyp+moov) for HLS."""
    offset = 0
    size_total = os.path.getsize(path)
    with open(path, "rb") as fh:
        while offset + 8 <= size_total:
            fh.seek(offset)
            head = fh.read(16)
            size, kind = struct.unpack(">I4s", head[:8])
            if size == 1:
                size = struct.unpack(">Q", head[8:16])[0]
            if kind == b"moof":
                return offset
            if size < 8:
                break
            offset += size
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


def repair(src: str, dst: str) -> SegmentProbe | None:
    """Remux the complete fragments of a torn partial ``src`` into ``dst``; None if nothing usable remains.

    A crash can cut the last fragment anywhere, so packets reaching past the end of the file are dropped,
    and the output must start on a keyframe to be decodable on its own.
    """
    size = os.path.getsize(src)
    wrote = 0
    try:
        with av.open(src) as inp:
            if not inp.streams.video:
                return None
            stream = inp.streams.video[0]
            with av.open(dst, "w", format="mp4", options=FMP4_OPTIONS) as out:
                ost = out.add_stream_from_template(stream)
                try:
                    for packet in inp.demux(stream):
                        if packet.dts is None:
                            continue
                        if packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > size:
                            break
                        if wrote == 0 and not packet.is_keyframe:
                            continue
                        packet.stream = ost
                        out.mux(packet)
                        wrote += 1
                except (av.FFmpegError, EOFError):
                    pass  # the torn tail; everything before it is kept
    except (av.FFmpegError, ValueError, OSError):
        wrote = 0
    if wrote == 0:
        if os.path.exists(dst):
            os.unlink(dst)
        return None
    return probe(dst)
