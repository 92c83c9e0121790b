"""RTP packetisation round trip: H.264/H.265 NALs -> RTP (single, STAP/AP, FU) -> access units -> fMP4 that decodes."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
from pathlib import Path

import av
import pytest

from civicam.ingest import fmp4
from civicam.ingest.rtp import Depacketizer, InterleavedReader

FPS = 25
TICKS = 90000 // FPS
MTU = 1400


def _encode(tmp: Path, codec: str, frames: int = 60) -> bytes:
    from support.services import require

    require(shutil.which("ffmpeg") is not None, "ffmpeg (Debian package)")
    out = tmp / f"clip.{codec}"
    enc = ["-c:v", "libx264", "-bf", "0", "-x264-params", "keyint=25:min-keyint=25:scenecut=0"] if codec == "h264" \
        else ["-c:v", "libx265", "-x265-params", "keyint=25:min-keyint=25:scenecut=0:bframes=0:log-level=error"]
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x240:rate={FPS}", "-frames:v", str(frames), "-pix_fmt", "yuv420p", *enc,
                    "-f", "hevc" if codec == "h265" else "h264", str(out)], check=True, timeout=60)
    return out.read_bytes()


def _nals(stream: bytes) -> list[bytes]:
    parts = stream.split(b"\x00\x00\x01")
    return [p.rstrip(b"\x00") for p in parts if p.rstrip(b"\x00")]


def _access_units(nals: list[bytes], hevc: bool) -> list[list[bytes]]:
    """Group NALs into access units: a new AU starts at a parameter set/AUD/SEI after a slice, or at a slice
    whose first_slice flag is set (the first bit after the NAL header)."""
    units: list[list[bytes]] = []
    have_slice = False
    for nal in nals:
        kind = (nal[0] >> 1) & 0x3F if hevc else nal[0] & 0x1F
        slice_ = kind < 32 if hevc else kind in (1, 5)
        first = slice_ and bool(nal[2 if hevc else 1] & 0x80)
        if not units or (have_slice and (not slice_ or first)):
            units.append([])
            have_slice = False
        units[-1].append(nal)
        have_slice = have_slice or slice_
    return units


def _rtp(seq: int, ts: int, marker: bool, payload: bytes) -> bytes:
    return struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 96, seq & 0xFFFF, ts & 0xFFFFFFFF, 1234) + payload


def _packetize(units: list[list[bytes]], hevc: bool, ts0: int) -> list[bytes]:
    packets: list[bytes] = []
    seq = 65530  # wraps early, on purpose
    for i, unit in enumerate(units):
        ts = ts0 + i * TICKS
        small = [n for n in unit if len(n) < 200]
        big = [n for n in unit if len(n) >= 200]
        payloads: list[bytes] = []
        if len(small) > 1:  # aggregate the small ones (parameter sets, SEI): STAP-A / AP
            head = bytes((0x60 | 24,)) if not hevc else bytes(((48 << 1), 1))
            payloads.append(head + b"".join(struct.pack(">H", len(n)) + n for n in small))
        else:
            payloads += small
        for nal in big:
            if len(nal) <= MTU:
                payloads.append(nal)
                continue
            hlen = 2 if hevc else 1
            kind = (nal[0] >> 1) & 0x3F if hevc else nal[0] & 0x1F
            body = nal[hlen:]
            chunks = [body[k:k + MTU] for k in range(0, len(body), MTU)]
            for c, chunk in enumerate(chunks):
                flags = (0x80 if c == 0 else 0) | (0x40 if c == len(chunks) - 1 else 0)
                if hevc:
                    head = bytes(((nal[0] & 0x81) | (49 << 1), nal[1], flags | kind))
                else:
                    head = bytes(((nal[0] & 0xE0) | 28, flags | kind))
                payloads.append(head + chunk)
        for k, payload in enumerate(payloads):
            packets.append(_rtp(seq, ts, k == len(payloads) - 1, payload))
            seq += 1
    return packets


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_round_trip_decodes_with_exact_frames_and_durations(codec: str, tmp_path: Path) -> None:
    hevc = codec == "h265"
    units = _access_units(_nals(_encode(tmp_path, codec)), hevc)
    assert len(units) == 60
    packets = _packetize(units, hevc, ts0=0xFFFFFFFF - 10 * TICKS)  # the RTP clock wraps mid-stream
    # Interleave with RTCP on channel 1 and an in-band keep-alive reply, then cut at random places.
    stream = bytearray()
    for k, pkt in enumerate(packets):
        stream += b"$\x00" + struct.pack(">H", len(pkt)) + pkt
        if k == 7:
            stream += b"$\x01\x00\x04abcd"
            stream += b"RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Length: 2\r\n\r\nok"
    got: list[tuple[int, bool, bytes]] = []
    depack = Depacketizer("hevc" if hevc else "h264", lambda ts, key, pieces, size: got.append(
        (ts, key, b"".join(pieces))), {})
    reader = InterleavedReader(0, depack)
    rng = random.Random(7)
    pos = 0
    while pos < len(stream):
        step = rng.randint(1, 9000)
        reader.feed(bytes(stream[pos:pos + step]))
        pos += step
    assert reader.replies == [200]
    assert len(got) == 60 and depack.dropped == 0
    assert [k for _t, k, _d in got].count(True) == 3
    for (_ts, _k, data), unit in zip(got, units, strict=True):
        assert data == b"".join(struct.pack(">I", len(n)) + n for n in unit)
    assert set(depack.params) == ({32, 33, 34} if hevc else {7, 8})

    # Write it the way the native engine does: init, then one fragment per GOP; timeline starts at 5 s.
    init, info = fmp4.init_segment("hevc" if hevc else "h264", depack.params)
    assert (info.width, info.height) == (320, 240)
    base = 5 * 90000
    out = tmp_path / "seg.mp4"
    with open(out, "wb") as fh:
        fh.write(init)
        starts = [i for i, (_t, k, _d) in enumerate(got) if k] + [len(got)]
        for seq, (a, b) in enumerate(zip(starts, starts[1:], strict=False), 1):
            gop = got[a:b]
            head = fmp4.fragment_header(seq, base + a * TICKS, [len(d) for _t, _k, d in gop], [TICKS] * len(gop),
                                        True)
            fh.write(head + b"".join(d for _t, _k, d in gop))
    with av.open(str(out)) as container:
        frames = [f for f in container.decode(video=0)]
        assert len(frames) == 60
        assert frames[0].width == 320 and frames[0].pts == base
        assert [f.pts for f in frames] == [base + i * TICKS for i in range(60)]
    if shutil.which("ffprobe"):
        res = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                              "stream=nb_read_frames,codec_name", "-of", "json", str(out)],
                             capture_output=True, text=True, check=True)
        stream_info = json.loads(res.stdout)["streams"][0]
        assert int(stream_info["nb_read_frames"]) == 60
        assert stream_info["codec_name"] == ("hevc" if hevc else "h264")
        assert res.stderr == ""


def test_lost_packet_drops_only_the_damaged_access_unit(tmp_path: Path) -> None:
    units = _access_units(_nals(_encode(tmp_path, "h264", frames=10)), False)
    packets = _packetize(units, False, ts0=0)
    # Drop one middle fragment of the first (keyframe) access unit.
    first_ts = struct.unpack_from(">I", packets[0], 4)[0]
    frag = [i for i, p in enumerate(packets) if struct.unpack_from(">I", p, 4)[0] == first_ts and p[12] & 0x1F == 28]
    del packets[frag[1]]
    got: list[int] = []
    depack = Depacketizer("h264", lambda ts, key, pieces, size: got.append(ts), {})
    for p in packets:
        depack.packet(p, 0, len(p))
    assert depack.dropped == 1 and len(got) == 9 and first_ts not in got


def test_sps_dimensions_with_cropping() -> None:
    # 1920x1080 (1088 coded, cropped by 8): a real x264 high-profile SPS.
    sps = bytes.fromhex("6764002aacd940780227e5c04400000303ec0000ea6038a0d0b2c0")
    assert fmp4.h264_info(sps) == fmp4.VideoInfo("h264", 1920, 1080)
