"""The samples (coded frames) inside the fragments of a segment file, for decoding a segment as it is written.

The blurred live view decodes the recorder's fragments one by one, as they are appended, without a
demuxer that would wait for the file to end. This reads the init section (codec, decoder configuration,
timescale, trex defaults) and, per fragment (moof+mdat), each sample's bytes, decode time, duration,
composition offset and sync flag. Sans-I/O and total: bytes in, values out, ``BadSamples`` for anything
that does not add up (a sample running past its mdat, an unknown codec), never an index error or a loop.
Both recording engines write ``default-base-is-moof`` fragments, so data offsets count from the moof.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from civicam.storage.fragments import (
    _TFHD_BASE_OFFSET,
    _TFHD_DESC,
    _TFHD_DURATION,
    _TFHD_FLAGS,
    _TFHD_SIZE,
    _TRUN_CTO,
    _TRUN_DATA_OFFSET,
    _TRUN_DURATION,
    _TRUN_FIRST_FLAGS,
    _TRUN_FLAGS,
    _TRUN_SIZE,
    NON_SYNC,
    _box_head,
    _child,
    _children,
    _defaults,
    _header,
    _TrackDefaults,
)

_CODECS = {b"avc1": ("h264", b"avcC"), b"avc3": ("h264", b"avcC"), b"hvc1": ("hevc", b"hvcC"),
           b"hev1": ("hevc", b"hvcC")}
_VISUAL_ENTRY_HEAD = 78  # bytes of a VisualSampleEntry before its child boxes (ISO/IEC 14496-12 §12.1.3)


class BadSamples(ValueError):
    """The bytes are not an init section or fragment this reader understands."""


@dataclass(frozen=True)
class TrackInit:
    """What a decoder needs from a segment's init section."""

    codec: str  # "h264" or "hevc", as FFmpeg names them
    extradata: bytes  # the avcC / hvcC record: the decoder's configuration (length-prefixed NAL units)
    timescale: int
    defaults: _TrackDefaults


@dataclass(frozen=True)
class Sample:
    data: bytes
    decode_time: int  # in track ticks
    duration: int
    cto: int  # composition time offset: presentation time = decode time + cto
    sync: bool


def read_init(init: bytes) -> TrackInit:
    """The first video track's codec and decoder configuration from ``ftyp moov`` bytes."""
    moov = None
    pos = 0
    while (h := _header(init, pos, len(init))) is not None:
        size, kind, head = h
        if kind == b"moov":
            moov = init[pos + head:pos + size]
        pos += size
    if moov is None:
        raise BadSamples("no moov box in the init section")
    box: tuple[int, int] | None = (0, len(moov))
    for kind in (b"trak", b"mdia", b"minf", b"stbl", b"stsd"):
        box = _child(moov, *box, kind) if box is not None else None
    if box is None or box[1] - box[0] < 16:
        raise BadSamples("no sample description in the init section")
    entry = _header(moov, box[0] + 8, box[1])  # after version/flags and the entry count
    if entry is None:
        raise BadSamples("a torn sample description")
    size, kind, head = entry
    if kind not in _CODECS:
        raise BadSamples(f"unsupported sample entry {kind!r}")
    codec, config_kind = _CODECS[kind]
    start = box[0] + 8
    config = _child(moov, start + head + _VISUAL_ENTRY_HEAD, start + size, config_kind)
    if config is None:
        raise BadSamples(f"no {config_kind.decode()} in the {kind.decode()} sample entry")
    defaults = _defaults(moov)
    if not defaults.timescale:
        raise BadSamples("no timescale in the init section")
    return TrackInit(codec, moov[config[0]:config[1]], defaults.timescale, defaults)


def _u32(data: bytes, pos: int, end: int) -> int:
    if pos + 4 > end:
        raise BadSamples("a truncated box")
    return int(struct.unpack_from(">I", data, pos)[0])


def fragment_samples(fragment: bytes, track: TrackInit, next_time: int = 0) -> list[Sample]:
    """The samples of one fragment (a moof and its mdat, as the fragment scanner lists it).

    ``next_time`` is the decode time to use when the fragment has no ``tfdt`` (where the previous ended).
    """
    moof = _box_head(fragment[:16])
    if moof is None or moof[1] != b"moof" or moof[0] > len(fragment):
        raise BadSamples("a fragment must start with a whole moof box")
    moof_size, _, moof_head = moof
    d = track.defaults
    samples: list[Sample] = []
    for kind, s, e in _children(fragment, moof_head, moof_size):
        if kind != b"traf":
            continue
        tfhd = _child(fragment, s, e, b"tfhd")
        if tfhd is None:
            continue
        flags = _u32(fragment, tfhd[0], tfhd[1]) & 0xFFFFFF
        pos = tfhd[0] + 4
        if _u32(fragment, pos, tfhd[1]) != d.track_id:
            continue
        pos += 4 + (8 if flags & _TFHD_BASE_OFFSET else 0) + (4 if flags & _TFHD_DESC else 0)
        default_duration, default_size, default_flags = d.duration, 0, d.flags
        if flags & _TFHD_DURATION:
            default_duration, pos = _u32(fragment, pos, tfhd[1]), pos + 4
        if flags & _TFHD_SIZE:
            default_size, pos = _u32(fragment, pos, tfhd[1]), pos + 4
        if flags & _TFHD_FLAGS:
            default_flags = _u32(fragment, pos, tfhd[1])
        time = next_time
        data_pos = moof_size + 8  # no data offset: the samples start right after the mdat header
        for k, bs, be in _children(fragment, s, e):
            if k == b"tfdt":
                if fragment[bs] == 1 and bs + 12 <= be:
                    time = int(struct.unpack_from(">Q", fragment, bs + 4)[0])
                else:
                    time = _u32(fragment, bs + 4, be)
            elif k == b"trun":
                time, data_pos = _run(fragment, bs, be, time, data_pos,
                                      (default_duration, default_size, default_flags), samples)
    return samples


def _run(fragment: bytes, bs: int, be: int, time: int, data_pos: int, defaults: tuple[int, int, int],
         out: list[Sample]) -> tuple[int, int]:
    """Append the samples of one trun box (payload ``fragment[bs:be]``); returns (next time, next data offset)."""
    default_duration, default_size, default_flags = defaults
    version = fragment[bs]
    run_flags = _u32(fragment, bs, be) & 0xFFFFFF
    count = _u32(fragment, bs + 4, be)
    pos = bs + 8
    if run_flags & _TRUN_DATA_OFFSET:
        data_pos = struct.unpack_from(">i", fragment, pos)[0] if pos + 4 <= be else -1
        pos += 4
    first_flags: int | None = None
    if run_flags & _TRUN_FIRST_FLAGS:
        first_flags, pos = _u32(fragment, pos, be), pos + 4
    fields = [f for f in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO) if run_flags & f]
    if pos + 4 * len(fields) * count > be:
        raise BadSamples("a trun box shorter than its sample count")
    for i in range(count):
        values = dict(zip(fields, struct.unpack_from(f">{len(fields)}I", fragment, pos), strict=True))
        pos += 4 * len(fields)
        duration = values.get(_TRUN_DURATION, default_duration)
        size = values.get(_TRUN_SIZE, default_size)
        sample_flags = first_flags if i == 0 and first_flags is not None else values.get(_TRUN_FLAGS, default_flags)
        cto = values.get(_TRUN_CTO, 0)
        if version == 1 and cto >= 1 << 31:
            cto -= 1 << 32  # signed in version 1
        if data_pos < 0 or data_pos + size > len(fragment):
            raise BadSamples("a sample runs past the end of its fragment")
        out.append(Sample(fragment[data_pos:data_pos + size], time, duration, cto, not sample_flags & NON_SYNC))
        data_pos += size
        time += duration
    return time, data_pos
