"""Fragmented-MP4 boxes for one H.264/H.265 video track: init section (ftyp+moov) and one moof+mdat per GOP."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

# Sample flags (ISO/IEC 14496-12 §8.8.3.1): a sync sample depends on nothing; the others depend on
# earlier samples and are not sync samples, which is what players use to find keyframes.
SYNC_FLAGS = 0x02000000
NON_SYNC_FLAGS = 0x01010000
TRACK_ID = 1
MAX_DIMENSION = 16384  # pixels: larger than any camera (H.265 level 6.2 stops at 8192x4320)


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


# -- parameter sets -----------------------------------------------------------------------------------


def unescape(nal: bytes) -> bytes:
    """The RBSP of a NAL unit: emulation-prevention bytes (00 00 03) removed."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in nal else nal


class _Bits:
    """MSB-first bit reader with Exp-Golomb codes, enough for the headers of an SPS."""

    def __init__(self, data: bytes, skip_bytes: int) -> None:
        self.value = int.from_bytes(data, "big")
        self.left = len(data) * 8 - skip_bytes * 8

    def u(self, n: int) -> int:
        if n > self.left:
            raise ValueError("truncated parameter set")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(frozen=True)
class VideoInfo:
    """What the init section needs from the parameter sets."""

    codec: str  # "h264" or "hevc", as FFmpeg names them
    width: int
    height: int


def h264_info(sps: bytes) -> VideoInfo:
    """Width and height from an H.264 SPS (ITU-T H.264 §7.3.2.1.1), cropping applied."""
    return _h264_sps(sps)[0]


# When a stream that may have B-frames does not say how many frames it reorders, this many are assumed
# (x264 with 3 B-frames and a pyramid reorders 2); the recorder grows it if the stream reorders more.
DEFAULT_REORDER = 4
MAX_REORDER = 16


def _h264_hrd(r: _Bits) -> None:
    count = r.ue() + 1
    r.u(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(min(count, 32)):
        r.ue()
        r.ue()
        r.u(1)
    r.u(20)  # four 5-bit lengths


def _h264_reorder(r: _Bits, profile: int) -> int:
    """max_num_reorder_frames from the VUI (Annex E.1.1) that follows the SPS fields already read."""
    if profile == 66:
        return 0  # baseline: no B-slices
    if not r.u(1):  # vui_parameters_present_flag
        return DEFAULT_REORDER
    if r.u(1) and r.u(8) == 255:  # aspect_ratio_info_present_flag, aspect_ratio_idc (255: explicit SAR)
        r.u(32)
    if r.u(1):  # overscan_info_present_flag
        r.u(1)
    if r.u(1):  # video_signal_type_present_flag
        r.u(4)
        if r.u(1):
            r.u(24)
    if r.u(1):  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    if r.u(1):  # timing_info_present_flag
        r.u(65)
    nal_hrd = r.u(1)
    if nal_hrd:
        _h264_hrd(r)
    vcl_hrd = r.u(1)
    if vcl_hrd:
        _h264_hrd(r)
    if nal_hrd or vcl_hrd:
        r.u(1)
    r.u(1)  # pic_struct_present_flag
    if not r.u(1):  # bitstream_restriction_flag
        return DEFAULT_REORDER
    r.u(1)
    for _ in range(4):
        r.ue()
    return min(MAX_REORDER, r.ue())


def _h264_sps(sps: bytes) -> tuple[VideoInfo, int]:
    """(width and height, frames reordered) of an H.264 SPS."""
    r = _Bits(unescape(sps), 1)
    profile = r.u(8)
    r.u(16)  # constraint flags, level
    r.ue()  # seq_parameter_set_id
    chroma, separate = 1, 0
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = r.ue()
        if chroma == 3:
            separate = r.u(1)
        r.ue()
        r.ue()  # bit depths
        r.u(1)
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma == 3 else 8):
                if r.u(1):
                    last = nxt = 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt or last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()
    r.u(1)  # max_num_ref_frames, gaps_in_frame_num_allowed
    w_mbs, h_units = r.ue() + 1, r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)
    r.u(1)
    width, height = w_mbs * 16, (2 - frame_mbs_only) * h_units * 16
    if r.u(1):  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        if chroma == 0 or separate:
            cx, cy = 1, 2 - frame_mbs_only
        else:
            cx, cy = (1 if chroma == 3 else 2), (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * cx
        height -= (top + bottom) * cy
    info = VideoInfo("h264", width, height)
    try:
        return info, _h264_reorder(r, profile)
    except ValueError:
        return info, DEFAULT_REORDER  # a VUI cut short: assume B-frames may be there


@dataclass(frozen=True)
class _HevcSps:
    info: VideoInfo
    ptl: bytes  # general_profile_space .. general_level_idc: the 12 bytes hvcC copies
    chroma: int
    depth_luma: int
    depth_chroma: int
    nested: int
    sub_layers: int
    reorder: int  # sps_max_num_reorder_pics of the highest sub-layer


def _hevc_sps(sps: bytes) -> _HevcSps:
    """The fields of an H.265 SPS (ITU-T H.265 §7.3.2.2) that the hvcC record and the track header need."""
    raw = unescape(sps)
    if len(raw) < 15:
        raise ValueError("truncated parameter set")
    r = _Bits(raw, 2)
    r.u(4)
    max_sub = r.u(3)
    nested = r.u(1)
    ptl = raw[3:15]
    r.u(96)  # general profile_tier_level
    present = [(r.u(1), r.u(1)) for _ in range(max_sub)]
    if max_sub:
        r.u(2 * (8 - max_sub))
    for prof, level in present:
        r.u(88 if prof else 0)
        r.u(8 if level else 0)
    r.ue()  # sps_seq_parameter_set_id
    chroma = r.ue()
    if chroma == 3:
        r.u(1)
    width, height = r.ue(), r.ue()
    if r.u(1):  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        sub_w = 2 if chroma in (1, 2) else 1
        sub_h = 2 if chroma == 1 else 1
        width -= (left + right) * sub_w
        height -= (top + bottom) * sub_h
    depth_luma, depth_chroma = r.ue() + 8, r.ue() + 8
    if chroma > 3 or not (8 <= depth_luma <= 16 and 8 <= depth_chroma <= 16):
        raise ValueError("parameter set out of range")  # hvcC has 2 and 3 bits for these (found by fuzzing)
    reorder = DEFAULT_REORDER
    try:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
        for _ in range(0 if r.u(1) else max_sub, max_sub + 1):
            r.ue()
            reorder = min(MAX_REORDER, r.ue())
            r.ue()
    except ValueError:
        reorder = DEFAULT_REORDER
    return _HevcSps(VideoInfo("hevc", width, height), ptl, chroma, depth_luma, depth_chroma, nested, max_sub + 1,
                    reorder)


def hevc_info(sps: bytes) -> VideoInfo:
    """Width and height from an H.265 SPS, conformance window applied."""
    return _hevc_sps(sps).info


def reorder_depth(codec: str, params: dict[int, bytes]) -> int:
    """How many access units a stream may deliver before one that is presented earlier (B-frames).

    From the SPS: 0 for H.264 baseline, the VUI's max_num_reorder_frames or the H.265 SPS's
    sps_max_num_reorder_pics otherwise; ``DEFAULT_REORDER`` when the SPS is missing or does not say.
    """
    try:
        if codec == "h264":
            return _h264_sps(params[7])[1]
        if codec == "hevc":
            return _hevc_sps(params[33]).reorder
    except (KeyError, ValueError):
        pass
    return DEFAULT_REORDER


def avcc(sps: bytes, pps: bytes) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3) with 4-byte NAL lengths."""
    return (bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)) + struct.pack(">H", len(sps)) + sps
            + b"\x01" + struct.pack(">H", len(pps)) + pps)


def hvcc(vps: bytes, sps: bytes, pps: bytes) -> bytes:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3) with 4-byte NAL lengths."""
    s = _hevc_sps(sps)
    head = (b"\x01" + s.ptl + struct.pack(">HBBBBH", 0xF000, 0xFC, 0xFC | s.chroma, 0xF8 | (s.depth_luma - 8),
                                          0xF8 | (s.depth_chroma - 8), 0)
            + bytes(((s.sub_layers << 3) | (s.nested << 2) | 3, 3)))
    arrays = b"".join(bytes((0x80 | kind,)) + struct.pack(">HH", 1, len(nal)) + nal
                      for kind, nal in ((32, vps), (33, sps), (34, pps)))
    return head + arrays


# -- init section ---------------------------------------------------------------------------------------


def init_segment(codec: str, params: dict[int, bytes], timescale: int = 90000) -> tuple[bytes, VideoInfo]:
    """ftyp+moov for one video track (no samples; ``mvex`` announces fragments). Raises KeyError/ValueError
    if the parameter sets needed are missing or unreadable."""
    if codec == "h264":
        sps, pps = params[7], params[8]
        info = h264_info(sps)
        entry_kind, config = b"avc1", box(b"avcC", avcc(sps, pps))
        brands = b"avc1"
    elif codec == "hevc":
        vps, sps, pps = params[32], params[33], params[34]
        info = hevc_info(sps)
        # hvc1: parameter sets are in the sample entry (they are also repeated in-band before keyframes).
        entry_kind, config = b"hvc1", box(b"hvcC", hvcc(vps, sps, pps))
        brands = b"hvc1"
    else:
        raise ValueError(f"unsupported codec {codec!r}")
    w, h = info.width, info.height
    if not (0 < w <= MAX_DIMENSION and 0 < h <= MAX_DIMENSION):
        # A lying SPS (found by fuzzing: sizes past 2**32 broke struct.pack) is refused like a missing one.
        raise ValueError(f"implausible picture size {w}x{h}")
    ftyp = box(b"ftyp", b"iso5", struct.pack(">I", 512), b"iso5iso6mp41", brands)
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0), struct.pack(">IH", 0x10000, 0x100),
                    bytes(10), matrix, bytes(24), struct.pack(">I", TRACK_ID + 1))
    tkhd = full_box(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0), bytes(8),
                    struct.pack(">HHHH", 0, 0, 0, 0), matrix, struct.pack(">II", w << 16, h << 16))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, 0), struct.pack(">HH", 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    vmhd = full_box(b"vmhd", 0, 1, bytes(8))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    entry = box(entry_kind, bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", w, h),
                struct.pack(">IIIH", 0x480000, 0x480000, 0, 1), bytes(32), struct.pack(">Hh", 0x18, -1), config)
    stbl = box(b"stbl", full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
               full_box(b"stts", 0, 0, bytes(4)), full_box(b"stsc", 0, 0, bytes(4)),
               full_box(b"stsz", 0, 0, bytes(8)), full_box(b"stco", 0, 0, bytes(4)))
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, box(b"minf", vmhd, dinf, stbl)))
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0)))
    return ftyp + box(b"moov", mvhd, trak, mvex), info


# -- fragments ----------------------------------------------------------------------------------------


def fragment_header(sequence: int, base_decode_time: int, sizes: Sequence[int], durations: Sequence[int],
                    first_is_sync: bool, offsets: Sequence[int] | None = None) -> bytes:
    """moof for one run of samples plus the mdat header; the sample bytes follow it in the file.

    ``default-base-is-moof`` makes the trun data offset relative to the moof, so a fragment is
    self-describing wherever it sits in the file (HLS serves fragments by byte range). ``offsets`` are
    the samples' composition time offsets (PTS - DTS, signed: a version-1 trun) for streams with B-frames;
    without them (or all zero) every sample is presented at its decode time.
    """
    n = len(sizes)
    ctos = offsets is not None and any(offsets)
    per = 3 if ctos else 2
    fields: list[int] = [0] * (per * n)
    fields[0::per] = durations
    fields[1::per] = sizes
    if ctos:
        assert offsets is not None
        fields[2::per] = [o & 0xFFFFFFFF for o in offsets]  # signed 32-bit, written as its two's complement
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    tfhd = full_box(b"tfhd", 0, 0x020000 | 0x20, struct.pack(">II", TRACK_ID, NON_SYNC_FLAGS))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time))
    # trun: data offset, first-sample flags, then per sample duration, size (and composition offset).
    trun_len = 8 + 4 + 4 + 4 + 4 + 4 * per * n
    moof_len = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_len
    first = SYNC_FLAGS if first_is_sync else NON_SYNC_FLAGS
    version_flags = (0x01000000 | 0x000B05) if ctos else 0x000305
    trun = (struct.pack(">I4sIIiI", trun_len, b"trun", version_flags, n, moof_len + 8, first)
            + struct.pack(f">{per * n}I", *fields))
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))
    return moof + struct.pack(">I4s", 8 + sum(sizes), b"mdat")
