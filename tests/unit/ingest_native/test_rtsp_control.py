"""RTSP control pieces that need no server: SDP parsing, Digest/Basic answers, URL and credential handling."""

from __future__ import annotations

import base64

import pytest

from civicam.ingest import rtsp_client
from civicam.ingest.rtsp_client import Unsupported, _Auth, parse_sdp

SDP_H264 = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=Session
t=0 0
m=audio 0 RTP/AVP 0
a=control:stream=1
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=42c01f;sprop-parameter-sets=PARAMS
a=control:stream=0
""".replace("PARAMS", "Z0LAH9kAUAW7ARAAAAMAEAAAAwMo8YMkgA==,aMuMsg==")

SDP_H265 = """v=0
m=video 0 RTP/AVP 97
a=rtpmap:97 H265/90000
a=fmtp:97 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwBdlZgJ;SPS;sprop-pps=RAHBcrRiQA==
a=control:rtsp://cam.example/live/track1
""".replace("SPS", "sprop-sps=QgEBAWAAAAMAkAAAAwAAAwBdoAKAgC0WWVmkkyvAQAAAAwBAAAAGQg==")


def test_h264_track_from_sdp() -> None:
    track = parse_sdp(SDP_H264, "rtsp://127.0.0.1:8554/cam/")
    assert (track.codec, track.payload_type, track.clock_rate) == ("h264", 96, 90000)
    assert track.control == "rtsp://127.0.0.1:8554/cam/stream=0"
    assert sorted(track.params) == [7, 8]
    assert track.params[8] == base64.b64decode("aMuMsg==")


def test_h265_track_from_sdp_with_absolute_control() -> None:
    track = parse_sdp(SDP_H265, "rtsp://ignored/")
    assert track.codec == "hevc" and track.control == "rtsp://cam.example/live/track1"
    assert sorted(track.params) == [32, 33, 34]


@pytest.mark.parametrize("sdp", [
    "v=0\nm=video 0 RTP/AVP 26\na=rtpmap:26 JPEG/90000\n",
    "v=0\nm=audio 0 RTP/AVP 0\n",
    "v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=2\n",
])
def test_unsupported_streams_go_to_pyav(sdp: str) -> None:
    with pytest.raises(Unsupported):
        parse_sdp(sdp, "rtsp://x/")


def test_digest_answer_matches_rfc2617(monkeypatch: pytest.MonkeyPatch) -> None:
    # The worked example of RFC 2617 §3.5 (the method and URI of an RTSP request take HTTP's place).
    monkeypatch.setattr(rtsp_client.os, "urandom", lambda n: bytes.fromhex("0a4f113b"))
    auth = _Auth("Mufasa", "Circle Of Life")
    assert auth.challenge(['Basic realm="x"', 'Digest realm="testrealm@host.com", qop="auth,auth-int", '
                           'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'])
    header = auth.header("GET", "/dir/index.html")
    assert header is not None and header.startswith("Digest ")
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "nc=00000001" in header and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


def test_basic_answer_and_no_credentials() -> None:
    auth = _Auth("op", "s3cret")
    assert auth.challenge(['Basic realm="cam"'])
    assert auth.header("DESCRIBE", "rtsp://x/") == "Basic " + base64.b64encode(b"op:s3cret").decode()
    assert not _Auth(None, None).challenge(['Basic realm="cam"'])
