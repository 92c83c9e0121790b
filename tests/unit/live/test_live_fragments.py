"""The fragment scanner behind LL-HLS parts: native-engine and FFmpeg fragment layouts, and torn tails."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from civicam.ingest import fmp4
from civicam.storage.fragments import Fragment, FragmentIndex, scan, scan_file
from civicam.storage.media import FMP4_OPTIONS

# A real x264 SPS (1920x1080) and a placeholder PPS: the scanner never looks inside them.
SPS = bytes.fromhex("6764002aacd940780227e5c04400000303ec0000ea6038a0d0b2c0")
PPS = bytes.fromhex("68ebe3cb22c0")
SYNC, NON_SYNC = fmp4.SYNC_FLAGS, fmp4.NON_SYNC_FLAGS


def _scan_bytes(data: bytes) -> FragmentIndex:
    return scan(lambda offset, n: data[offset:offset + n], len(data))


def _native(gops: list[tuple[int, list[int], bool]]) -> tuple[bytes, list[tuple[int, int]]]:
    """Init section and fragments as the native engine writes them: (base time, durations, sync) each."""
    init, _ = fmp4.init_segment("h264", {7: SPS, 8: PPS})
    data, spans = init, []
    for n, (base, durations, sync) in enumerate(gops, 1):
        sizes = [100 + i for i in range(len(durations))]
        frag = fmp4.fragment_header(n, base, sizes, durations, sync) + bytes(sum(sizes))
        spans.append((len(data), len(frag)))
        data += frag
    return data, spans


def test_native_fragments_are_listed_with_time_and_keyframe_flag() -> None:
    data, spans = _native([(0, [3600] * 12, True), (43200, [3600] * 13, False), (90000, [3600] * 5, True)])
    index = _scan_bytes(data)
    assert index.timescale == 90000
    assert index.init_length == spans[0][0]
    assert index.fragments == (
        Fragment(spans[0][0], spans[0][1], 0, 43200, True),
        Fragment(spans[1][0], spans[1][1], 43200, 46800, False),
        Fragment(spans[2][0], spans[2][1], 90000, 18000, True),
    )
    assert index.seconds(index.fragments[1].duration) == pytest.approx(0.52)


def _cuts(data: bytes, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(file length, complete fragments) for cuts inside and between the fragments of ``data``."""
    (o1, l1), (o2, l2) = spans[0], spans[1]
    return [(o1, 0), (o1 + 4, 0), (o1 + 20, 0), (o1 + l1 - 1, 0), (o1 + l1, 1), (o2 + 7, 1), (o2 + 200, 1),
            (o2 + l2 - 1, 1), (len(data), 2)]


def test_a_torn_tail_is_not_a_fragment() -> None:
    data, spans = _native([(0, [3600] * 12, True), (43200, [3600] * 12, False)])
    for length, complete in _cuts(data, spans):
        index = _scan_bytes(data[:length])
        assert len(index.fragments) == complete, length
        assert index.init_length == spans[0][0], length
    assert _scan_bytes(data[:30]).init_length == 0  # the moov is not there yet


def _moof_ffmpeg_style(seq: int, base: int, *, count: int, tfhd_duration: int | None, tfhd_flags: int | None,
                       first_flags: int | None, per_sample_flags: list[int] | None = None,
                       per_sample_durations: list[int] | None = None, tfdt_version: int = 1,
                       with_tfdt: bool = True) -> bytes:
    """A moof+mdat with the optional fields FFmpeg uses: tfhd defaults, trun first-sample or per-sample flags."""
    tf_flags, tf_fields = 0x020000, struct.pack(">I", 1)
    if tfhd_duration is not None:
        tf_flags |= 0x8
        tf_fields += struct.pack(">I", tfhd_duration)
    tf_flags |= 0x10
    tf_fields += struct.pack(">I", 50)
    if tfhd_flags is not None:
        tf_flags |= 0x20
        tf_fields += struct.pack(">I", tfhd_flags)
    tfhd = fmp4.full_box(b"tfhd", 0, tf_flags, tf_fields)
    tfdt = fmp4.full_box(b"tfdt", tfdt_version, 0, struct.pack(">Q" if tfdt_version else ">I", base))
    run_flags, head = 0x1 | 0x200, [struct.pack(">I", count), struct.pack(">i", 0)]
    if first_flags is not None:
        run_flags |= 0x4
        head.append(struct.pack(">I", first_flags))
    if per_sample_durations is not None:
        run_flags |= 0x100
    if per_sample_flags is not None:
        run_flags |= 0x400
    samples = b""
    for i in range(count):
        if per_sample_durations is not None:
            samples += struct.pack(">I", per_sample_durations[i])
        samples += struct.pack(">I", 50)
        if per_sample_flags is not None:
            samples += struct.pack(">I", per_sample_flags[i])
    trun = fmp4.full_box(b"trun", 0, run_flags, *head, samples)
    traf = fmp4.box(b"traf", tfhd, *([tfdt] if with_tfdt else []), trun)
    return fmp4.box(b"moof", fmp4.full_box(b"mfhd", 0, 0, struct.pack(">I", seq)), traf) + fmp4.box(
        b"mdat", bytes(50 * count))


def _init_with_trex(duration: int, flags: int, timescale: int = 12800) -> bytes:
    init, _ = fmp4.init_segment("h264", {7: SPS, 8: PPS}, timescale)
    trex = fmp4.full_box(b"trex", 0, 0, struct.pack(">IIIII", fmp4.TRACK_ID, 1, 0, 0, 0))
    new_trex = fmp4.full_box(b"trex", 0, 0, struct.pack(">IIIII", fmp4.TRACK_ID, 1, duration, 0, flags))
    assert init.count(trex) == 1
    moov_at = init.index(b"moov") - 4
    patched = init.replace(trex, new_trex)
    return patched[:moov_at] + struct.pack(">I", len(patched) - moov_at) + patched[moov_at + 4:]


@pytest.mark.parametrize(("kwargs", "duration", "independent"), [
    # FFmpeg's usual keyframe fragment: tfhd default duration and non-sync flags, first-sample flags sync.
    (dict(tfhd_duration=512, tfhd_flags=NON_SYNC, first_flags=SYNC), 512 * 6, True),
    # A frag_duration cut in mid-GOP: no first-sample flags, the tfhd default says non-sync.
    (dict(tfhd_duration=512, tfhd_flags=NON_SYNC, first_flags=None), 512 * 6, False),
    # Nothing in the tfhd: the trex defaults (duration 1000, sync) apply.
    (dict(tfhd_duration=None, tfhd_flags=None, first_flags=None), 1000 * 6, True),
    # Per-sample durations and per-sample flags win over every default.
    (dict(tfhd_duration=512, tfhd_flags=SYNC, first_flags=None, per_sample_flags=[NON_SYNC] + [SYNC] * 5,
          per_sample_durations=[500, 510, 520, 530, 540, 550]), 3150, False),
    (dict(tfhd_duration=512, tfhd_flags=NON_SYNC, first_flags=None, per_sample_flags=[SYNC] + [NON_SYNC] * 5),
     512 * 6, True),
    # A 32-bit tfdt.
    (dict(tfhd_duration=512, tfhd_flags=NON_SYNC, first_flags=SYNC, tfdt_version=0), 512 * 6, True),
])
def test_defaults_and_optional_fields(kwargs: dict[str, Any], duration: int, independent: bool) -> None:
    init = _init_with_trex(1000, SYNC)
    frag = _moof_ffmpeg_style(1, 7680, count=6, **kwargs)
    index = _scan_bytes(init + frag)
    assert index.timescale == 12800 and index.init_length == len(init)
    assert index.fragments == (Fragment(len(init), len(frag), 7680, duration, independent),)


def test_missing_tfdt_continues_from_the_previous_fragment_and_other_boxes_are_skipped() -> None:
    init = _init_with_trex(0, NON_SYNC)
    a = _moof_ffmpeg_style(1, 100, count=4, tfhd_duration=512, tfhd_flags=NON_SYNC, first_flags=SYNC)
    b = _moof_ffmpeg_style(2, 0, count=2, tfhd_duration=512, tfhd_flags=NON_SYNC, first_flags=None,
                           with_tfdt=False)
    mfra = fmp4.box(b"mfra", bytes(20))
    index = _scan_bytes(init + a + fmp4.box(b"free", bytes(3)) + b + mfra)
    assert [(f.decode_time, f.duration, f.independent) for f in index.fragments] == [(100, 2048, True),
                                                                                     (2148, 1024, False)]
    assert index.fragments[1].offset == len(init) + len(a) + 11


def _ffmpeg_file(path: Path, options: dict[str, str]) -> None:
    """5 s at 25 fps, a keyframe every 2 s, muxed by FFmpeg as the PyAV engine does."""
    with av.open(str(path), "w", format="mp4", options={**FMP4_OPTIONS, **options}) as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        st.options = {"g": "50", "keyint_min": "50", "sc_threshold": "0", "bf": "0"}
        for i in range(125):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")
            frame.pts = i
            for p in st.encode(frame):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


@pytest.mark.parametrize(("options", "fragments"), [({}, 3), ({"frag_duration": "500000"}, 10)])
def test_ffmpeg_fragments_cover_the_stream_and_decode(tmp_path: Path, options: dict[str, str],
                                                      fragments: int) -> None:
    path = tmp_path / "seg.mp4"
    _ffmpeg_file(path, options)
    index = scan_file(str(path))
    frags = index.fragments
    assert len(frags) == fragments
    assert sum(index.seconds(f.duration) for f in frags) == pytest.approx(5.0)
    assert [f.decode_time for f in frags[1:]] == [f.decode_time + f.duration for f in frags[:-1]]
    # Keyframes every 2 s: exactly the fragments starting at 0, 2 and 4 s are independent.
    assert [index.seconds(f.decode_time) for f in frags if f.independent] == pytest.approx([0.0, 2.0, 4.0])
    data = path.read_bytes()
    # The init section plus the fragments from an independent one on decode, frame for frame.
    last_key = max(i for i, f in enumerate(frags) if f.independent)
    with av.open(io.BytesIO(data[:index.init_length] + data[frags[last_key].offset:]),
                 format="mp4") as c:
        assert len(list(c.decode(video=0))) == 25
    # A file cut inside its last fragment still lists all the others (the writer is appending).
    torn = _scan_bytes(data[:frags[-1].offset + frags[-1].length - 3])
    assert torn.fragments == frags[:-1]
