"""The complete fragments (moof+mdat) of a fragmented MP4 file, read while its writer may still append.

Low-latency HLS lists each fragment as a part by byte range, so it needs, per fragment: where it is, how
long it plays and whether it starts on a keyframe. Both recording engines write one video track as
``ftyp moov (moof mdat)*``: the native engine with per-sample durations and the sync flag as the trun's
first-sample flags; FFmpeg (``frag_keyframe+empty_moov+default_base_moof``, maybe ``frag_duration``) often
leaves durations and flags to the tfhd or trex defaults. A torn tail (a box not yet fully written, or a
moof whose mdat is not there yet) ends the list: it is not a fragment until the writer finishes it.

The parser takes a ``read_at(offset, n)`` function rather than a file, so it is tested on bytes and
reads only box headers and moof/moov boxes from disk, never the media data.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, n)``: up to ``n`` bytes of the file from ``offset``."""

NON_SYNC = 0x00010000  # sample_is_non_sync_sample (ISO/IEC 14496-12 §8.8.3.1)
# tfhd flags (§8.8.7.1)
_TFHD_BASE_OFFSET, _TFHD_DESC, _TFHD_DURATION, _TFHD_SIZE, _TFHD_FLAGS = 0x1, 0x2, 0x8, 0x10, 0x20
# trun flags (§8.8.8.1)
_TRUN_DATA_OFFSET, _TRUN_FIRST_FLAGS = 0x1, 0x4
_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO = 0x100, 0x200, 0x400, 0x800


@dataclass(frozen=True)
class Fragment:
    """One complete moof+mdat: its bytes in the file and its time in track ticks."""

    offset: int
    length: int
    decode_time: int
    duration: int
    independent: bool  # its first sample is a sync sample: it decodes without earlier fragments


@dataclass(frozen=True)
class FragmentIndex:
    """What a (possibly growing) fMP4 file holds so far."""

    init_length: int  # bytes before the first moof (ftyp+moov); 0 until a whole moov is there
    timescale: int  # ticks per second of the track; 0 until the moov is read
    fragments: tuple[Fragment, ...]
    size: int = 0  # bytes of the file looked at: a writer appending later makes the file longer than this

    def seconds(self, ticks: int) -> float:
        return ticks / self.timescale if self.timescale else 0.0


@dataclass(frozen=True)
class _TrackDefaults:
    track_id: int = 1
    timescale: int = 0
    duration: int = 0
    flags: int = 0


def _box_head(head: bytes) -> tuple[int, bytes, int] | None:
    """(box size, type, header length) from the first bytes of a box, or None if they are not a whole header.

    Size 0 ("to the end of the file") is refused: such a box is not finished while the file grows.
    """
    if len(head) < 8:
        return None
    size, kind = struct.unpack_from(">I4s", head)
    if size == 1:
        if len(head) < 16:
            return None
        return struct.unpack_from(">Q", head, 8)[0], kind, 16
    return (size, kind, 8) if size >= 8 else None


def _header(data: bytes, pos: int, end: int) -> tuple[int, bytes, int] | None:
    """``_box_head`` at ``pos`` of ``data``, or None when the box does not fit before ``end``."""
    h = _box_head(data[pos:min(pos + 16, end)])
    if h is None or h[0] < h[2] or pos + h[0] > end:
        return None
    return h


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``."""
    pos = start
    while (h := _header(data, pos, end)) is not None:
        size, kind, head = h
        yield kind, pos + head, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _children(data, start, end):
        if k == kind:
            return s, e
    return None


def _defaults(moov: bytes) -> _TrackDefaults:
    """Timescale and trex defaults of the first track of a ``moov`` payload."""
    track_id, timescale = 1, 0
    trak = _child(moov, 0, len(moov), b"trak")
    if trak is not None:
        tkhd = _child(moov, *trak, b"tkhd")
        if tkhd is not None:
            version = moov[tkhd[0]]
            track_id = struct.unpack_from(">I", moov, tkhd[0] + (20 if version == 1 else 12))[0]
        mdia = _child(moov, *trak, b"mdia")
        mdhd = _child(moov, *mdia, b"mdhd") if mdia is not None else None
        if mdhd is not None:
            version = moov[mdhd[0]]
            timescale = struct.unpack_from(">I", moov, mdhd[0] + (20 if version == 1 else 12))[0]
    duration = flags = 0
    mvex = _child(moov, 0, len(moov), b"mvex")
    if mvex is not None:
        for kind, s, _e in _children(moov, *mvex):
            if kind == b"trex":
                tid, _desc, duration_, _size, flags_ = struct.unpack_from(">5I", moov, s + 4)
                if tid == track_id:
                    duration, flags = duration_, flags_
    return _TrackDefaults(track_id, timescale, duration, flags)


def parse_moof(moof: bytes, defaults: _TrackDefaults) -> tuple[int | None, int, bool]:
    """(decode time or None, duration in ticks, starts with a sync sample) of the track's runs in a moof payload."""
    decode_time: int | None = None
    duration, first_flags, seen_first = 0, 0, False
    for kind, s, e in _children(moof, 0, len(moof)):
        if kind != b"traf":
            continue
        tfhd = _child(moof, s, e, b"tfhd")
        if tfhd is None:
            continue
        tf_flags = struct.unpack_from(">I", moof, tfhd[0])[0] & 0xFFFFFF
        pos = tfhd[0] + 4
        track_id = struct.unpack_from(">I", moof, pos)[0]
        if track_id != defaults.track_id:
            continue
        pos += 4 + (8 if tf_flags & _TFHD_BASE_OFFSET else 0) + (4 if tf_flags & _TFHD_DESC else 0)
        default_duration, default_flags = defaults.duration, defaults.flags
        if tf_flags & _TFHD_DURATION:
            default_duration = struct.unpack_from(">I", moof, pos)[0]
            pos += 4
        pos += 4 if tf_flags & _TFHD_SIZE else 0
        if tf_flags & _TFHD_FLAGS:
            default_flags = struct.unpack_from(">I", moof, pos)[0]
        for k, bs, _be in _children(moof, s, e):
            if k == b"tfdt" and decode_time is None:
                wide = moof[bs] == 1
                decode_time = struct.unpack_from(">Q" if wide else ">I", moof, bs + 4)[0]
            elif k == b"trun":
                run_flags = struct.unpack_from(">I", moof, bs)[0] & 0xFFFFFF
                count = struct.unpack_from(">I", moof, bs + 4)[0]
                pos = bs + 8 + (4 if run_flags & _TRUN_DATA_OFFSET else 0)
                run_first: int | None = None
                if run_flags & _TRUN_FIRST_FLAGS:
                    run_first = struct.unpack_from(">I", moof, pos)[0]
                    pos += 4
                fields = [f for f in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO) if run_flags & f]
                stride = 4 * len(fields)
                if run_flags & _TRUN_DURATION:
                    duration += sum(struct.unpack_from(">I", moof, pos + i * stride)[0] for i in range(count))
                else:
                    duration += default_duration * count
                if not seen_first and count:
                    seen_first = True
                    if run_first is not None:
                        first_flags = run_first
                    elif run_flags & _TRUN_FLAGS:
                        first_flags = struct.unpack_from(">I", moof, pos + 4 * fields.index(_TRUN_FLAGS))[0]
                    else:
                        first_flags = default_flags
    return decode_time, duration, seen_first and not first_flags & NON_SYNC


def scan(read_at: ReadAt, size: int) -> FragmentIndex:
    """The complete fragments among the first ``size`` bytes of a file, in file order.

    Boxes other than moov/moof/mdat (styp, sidx, prft, an mfra at the end) are skipped; a fragment spans
    from its moof to the end of the mdat that follows it.
    """
    pos, init, defaults = 0, 0, _TrackDefaults()
    moof_at: int | None = None
    moof = b""
    next_time = 0
    found: list[Fragment] = []
    while pos + 8 <= size:
        h = _box_head(read_at(pos, 16))
        if h is None or h[0] < h[2] or pos + h[0] > size:
            break  # a torn tail: the writer has not finished this box yet
        box_size, kind, hlen = h
        if kind == b"moov":
            defaults = _defaults(read_at(pos + hlen, box_size - hlen))
            init = init or pos + box_size
        elif kind == b"moof":
            if not found and moof_at is None:
                init = pos  # the init section is everything before the first moof, as HLS serves it
            moof_at, moof = pos, read_at(pos + hlen, box_size - hlen)
        elif kind == b"mdat" and moof_at is not None:
            decode_time, duration, sync = parse_moof(moof, defaults)
            start = next_time if decode_time is None else decode_time
            found.append(Fragment(moof_at, pos + box_size - moof_at, start, duration, sync))
            next_time = start + duration
            moof_at = None
        pos += box_size
    return FragmentIndex(init, defaults.timescale, tuple(found), size)


def scan_fd(fd: int) -> FragmentIndex:
    """``scan`` of an open file as it is now (an open descriptor keeps reading the same file after a rename)."""
    return scan(lambda offset, n: os.pread(fd, n, offset), os.fstat(fd).st_size)


def scan_file(path: str) -> FragmentIndex:
    """``scan`` of the file at ``path`` as it is now; raises FileNotFoundError if it is gone."""
    with open(path, "rb") as fh:
        return scan_fd(fh.fileno())
