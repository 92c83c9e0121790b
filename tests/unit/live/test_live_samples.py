"""Decoding a segment fragment by fragment: the sample reader, the fragment encoder and the blurred playlist."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from civicam.ingest import fmp4
from civicam.live import hls
from civicam.live.blurred_live import BlurredFile, rendition_size
from civicam.live.encode import FragmentEncoder, fragment, nal_units
from civicam.storage.fragments import scan
from civicam.storage.media import FMP4_OPTIONS
from civicam.storage.samples import BadSamples, fragment_samples, read_init

SPS = bytes.fromhex("6764002aacd940780227e5c04400000303ec0000ea6038a0d0b2c0")
PPS = bytes.fromhex("68ebe3cb22c0")


def _frames(n: int, w: int = 320, h: int = 240) -> list[av.VideoFrame]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1), format="bgr24")
        f.pts, f.time_base = i * 3600, Fraction(1, 90000)
        out.append(f)
    return out


def test_native_fragments_give_back_every_sample() -> None:
    init, _ = fmp4.init_segment("h264", {7: SPS, 8: PPS})
    sizes, durations = [5, 7, 9], [3600, 3601, 3599]
    payload = [bytes([k]) * n for k, n in enumerate(sizes)]
    frag = fmp4.fragment_header(1, 90000, sizes, durations, True) + b"".join(payload)
    track = read_init(init)
    assert track.codec == "h264" and track.timescale == 90000 and track.extradata == fmp4.avcc(SPS, PPS)
    samples = fragment_samples(frag, track)
    assert [s.data for s in samples] == payload
    assert [s.decode_time for s in samples] == [90000, 93600, 97201]
    assert [(s.duration, s.cto, s.sync) for s in samples] == [(3600, 0, True), (3601, 0, False), (3599, 0, False)]
    # A sample that runs past the bytes given is an error, not a short read.
    with pytest.raises(BadSamples):
        fragment_samples(frag[:-1], track)
    with pytest.raises(BadSamples):
        fragment_samples(b"\x00\x00\x00\x08free" + frag, track)
    with pytest.raises(BadSamples):
        read_init(init[:40])


def test_ffmpeg_fragments_decode_to_the_same_frames_as_the_demuxer(tmp_path: Path) -> None:
    """FFmpeg's layout (tfhd defaults, composition offsets with B-frames): samples fed to a decoder one by
    one give the frames FFmpeg's own demuxer gives, with the same timestamps."""
    path = tmp_path / "ff.mp4"
    with av.open(str(path), "w", format="mp4", options=FMP4_OPTIONS) as out:
        st = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "10", "bf": "2"})
        st.width, st.height, st.pix_fmt, st.time_base = 320, 240, "yuv420p", Fraction(1, 90000)
        for f in _frames(30):
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    data = path.read_bytes()
    index = scan(lambda o, n: data[o:o + n], len(data))
    track = read_init(data[:index.init_length])
    dec = av.CodecContext.create(track.codec, "r")
    dec.extradata = track.extradata
    got = []
    for frag in index.fragments:
        for s in fragment_samples(data[frag.offset:frag.offset + frag.length], track, frag.decode_time):
            packet = av.Packet(s.data)
            packet.pts, packet.dts = s.decode_time + s.cto, s.decode_time
            got += [(f.pts, f.to_ndarray(format="gray")) for f in dec.decode(packet)]
    got += [(f.pts, f.to_ndarray(format="gray")) for f in dec.decode(None)]
    with av.open(str(path)) as c:
        ref = [(f.pts, f.to_ndarray(format="gray")) for f in c.decode(video=0)]
    assert len(got) == len(ref) == 30
    assert [p for p, _ in got] == [p for p, _ in ref]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, ref, strict=True))


def test_fragment_encoder_writes_playable_fragments_with_keyframes_where_asked() -> None:
    enc = FragmentEncoder(320, 240, Fraction(1, 90000))
    frames = _frames(20)
    coded = [c for i, f in enumerate(frames) for c in enc.encode(f, i in (0, 10))]
    assert len(coded) == 20  # zero latency: one sample per frame, at once
    assert [c.pts for c in coded] == [f.pts for f in frames]
    assert [i for i, c in enumerate(coded) if c.key] == [0, 10]
    assert enc.init is not None
    data = enc.init + fragment(1, coded[:10], [3600] * 10) + fragment(2, coded[10:], [3600] * 10)
    index = scan(lambda o, n: data[o:o + n], len(data))
    assert [(f.decode_time, f.duration, f.independent) for f in index.fragments] == [(0, 36000, True),
                                                                                     (36000, 36000, True)]
    # The second fragment decodes on its own (after the init section): a part a player may start on.
    second = index.fragments[1]
    with av.open(io.BytesIO(enc.init + data[second.offset:]), format="mp4") as c:
        decoded = list(c.decode(video=0))
    assert len(decoded) == 10 and decoded[0].pts == 36000
    assert (decoded[0].width, decoded[0].height) == (320, 240)


def test_nal_units_split_annex_b() -> None:
    stream = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01\x65\x88"
    assert nal_units(stream) == [SPS, PPS, b"\x65\x88"]
    assert nal_units(b"") == [] and nal_units(b"\x00\x00\x01") == []
    assert struct.unpack(">I", b"\x00\x00\x00\x01")[0] == 1


def _file(seq: int, name: str, parts: int, complete: bool, new_session: bool = False) -> BlurredFile:
    f = BlurredFile(seq, datetime(2026, 12, 1, 12, 0, seq * 4, tzinfo=UTC), name, new_session, init_length=600)
    f.parts = [hls.Part(600 + 1000 * k, 1000, 0.4, k % 5 == 0) for k in range(parts)]
    f.complete = complete
    return f


def test_blurred_playlist_lists_segments_parts_and_the_edge() -> None:
    files = [_file(7, "a.mp4", 10, True), _file(8, "b.mp4", 10, True), _file(9, "c.mp4", 10, True),
             _file(10, "d.mp4", 3, False, new_session=True), _file(11, "e.mp4", 1, False)]
    text = hls.file_playlist(files, prefix="blurred/full/", target_s=4, part_target_s=0.4)
    lines = text.splitlines()
    assert "#EXT-X-MEDIA-SEQUENCE:7" in lines and "#EXT-X-TARGETDURATION:4" in lines
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.200" in lines
    # Whole segments by byte range after their init section; parts for the last two and the edge only.
    assert lines.count("#EXT-X-BYTERANGE:10000@600") == 3 and lines.count("#EXTINF:4.000,") == 3
    parts = [ln for ln in lines if ln.startswith("#EXT-X-PART:")]
    assert len(parts) == 10 + 10 + 3
    assert not any("a.mp4" in p for p in parts) and sum("d.mp4" in p for p in parts) == 3
    # A new connection: a discontinuity and its own map; nothing after a file that is not complete.
    assert lines[lines.index('#EXT-X-MAP:URI="blurred/full/d.mp4",BYTERANGE="600@0"') - 1] == "#EXT-X-DISCONTINUITY"
    assert "e.mp4" not in text
    assert hls.reload_ready(9, {7: 10, 8: 10, 9: 10, 10: 3}, 10, 2)
    assert not hls.reload_ready(9, {7: 10, 8: 10, 9: 10, 10: 3}, 10, 3)


@pytest.mark.parametrize(("rendition", "source", "size"), [
    ("wall", (1280, 720), (640, 360)), ("wall", (1920, 1080), (640, 360)), ("wall", (320, 240), (320, 240)),
    ("wall", (1920, 1440), (480, 360)), ("wall", (720, 576), (450, 360)), ("wall", (1000, 562), (640, 360)),
    ("full", (1280, 720), (1280, 720)),
])
def test_rendition_size_fits_the_box_keeps_the_aspect_and_never_enlarges(
        rendition: str, source: tuple[int, int], size: tuple[int, int]) -> None:
    assert rendition_size(rendition, *source) == size


def test_blurred_playlist_never_ends_on_a_segment_uri() -> None:
    """hls.js reads a playlist ending on a segment URI as if that segment were still in progress and laid
    the next segment's parts over it (the blurred view stalled at every boundary): while no later file has
    a part, the newest file is listed by its parts only, even once complete, and without a preload hint
    past its end (no bytes will ever come there)."""
    files = [_file(7, "a.mp4", 10, True), _file(8, "b.mp4", 10, True)]
    lines = hls.file_playlist(files, prefix="blurred/full/", target_s=4, part_target_s=0.4).splitlines()
    assert lines[-1].startswith("#EXT-X-PART:") and "b.mp4" in lines[-1]
    assert lines.count("#EXTINF:4.000,") == 1 and "blurred/full/b.mp4" not in lines
    assert not any(ln.startswith("#EXT-X-PRELOAD-HINT") for ln in lines)
    # Once the next file has a part, b is a whole segment and the hint points after c's last part.
    files.append(_file(9, "c.mp4", 2, False))
    lines = hls.file_playlist(files, prefix="blurred/full/", target_s=4, part_target_s=0.4).splitlines()
    assert lines.count("#EXTINF:4.000,") == 2 and "blurred/full/b.mp4" in lines
    assert lines[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="blurred/full/c.mp4",BYTERANGE-START=2600'
