"""Streams with B-frames are recorded with correct presentation times; Digest auth against a real server."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from recording_helpers import LOG, add_cameras, fast_settings, file_mount, new_context, wait_for

from civicam.context import Context
from civicam.ingest import native
from civicam.ingest.rtsp_client import RtspError, open_session
from civicam.ingest.service import RecordingService
from civicam.ingest.sources import SourceSpec
from civicam.storage.index import segments_between
from civicam.storage.models import Segment
from support.rtsp import RtspServer

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]
FPS = 25
TICKS = 90000 // FPS  # the RTP clock is the track timescale


def _segments(ctx: Context, cam: int) -> list[Segment]:
    with ctx.db.session() as s:
        return list(segments_between(s, cam, None, None))


def test_bframe_streams_keep_their_presentation_times(rtsp_server: RtspServer, tmp_path: Path) -> None:
    paths = ["/bframes-main", "/bframes-high", "/bframes-h265"]
    ctx = new_context(tmp_path)
    service = RecordingService(ctx, LOG, settings=fast_settings(engine="native"))
    try:
        cams = add_cameras(ctx, [rtsp_server.url(p) for p in paths])
        service.start()
        svc = service
        wait_for(lambda: all(svc.health()[c].segments >= 3 for c in cams), 60, "three segments per camera")
    finally:
        service.close()
    first_pts: dict[int, float] = {}
    for path, cam in zip(paths, cams, strict=True):
        assert (cam, rtsp_server.url(path)) not in native._pyav_only, path  # noqa: SLF001  (native, no fallback)
        segs = _segments(ctx, cam)
        with av.open(service.store.local_path(segs[0].path)) as c:
            first_pts[cam] = min(p.pts for p in c.demux(video=0) if p.size) / 90000
        for seg in segs[1:-1]:  # whole segments (the last one ends at the stop, mid-GOP)
            file = service.store.local_path(seg.path)
            with av.open(file) as c:
                stream = c.streams.video[0]
                packets = [p for p in c.demux(stream) if p.size]
                dts = [p.dts for p in packets]
                assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), (path, "DTS must increase")
                assert any(p.pts != p.dts for p in packets), (path, "the stream has B-frames")
            with av.open(file) as c:
                pts = sorted(f.pts for f in c.decode(video=0))
            # The oracle is the source: a live encoder at 25 fps, every frame 1/25 s after the one before it
            # in presentation order, none missing or doubled, as many as the index says.
            assert len(pts) == seg.frames, (path, len(pts), seg.frames)
            steps = {b - a for a, b in zip(pts, pts[1:], strict=False)}
            assert steps <= {TICKS - 1, TICKS, TICKS + 1}, (path, sorted(steps)[:5])
            assert abs((seg.end - seg.start).total_seconds() - seg.frames / FPS) < 0.002, path
            # A segment starts on a keyframe presented first, at the time the index gives it (one timeline
            # per connection: ticks since its first keyframe). FFmpeg shifts DTS down by the largest negative
            # composition offset, so the keyframe's PTS, not its DTS, is compared.
            assert packets[0].is_keyframe and packets[0].pts == pts[0], path
            if seg.session == segs[0].session:  # a reconnect (a loaded box) starts a new timeline
                # Within a frame (FFmpeg offsets each file's PTS by its own largest negative composition
                # offset) and the wall-clock slew bound (ingest/clock.py), 0.5 ms per second of recording.
                since = (seg.start - segs[0].start).total_seconds()
                assert abs(pts[0] / 90000 - since - first_pts[cam]) < 1 / FPS + 0.002 + 5e-4 * since, path
    ctx.close()


def test_digest_auth_against_a_real_server(clip: Path) -> None:
    mount = {**file_mount("/digest", clip), "auth": {"user": "operator", "password": "D1gest-only", "method": "digest"}}
    with RtspServer([mount]) as server:
        ok = open_session(SourceSpec(1, server.url("/digest"), "operator", "D1gest-only", timeout_s=10))
        try:
            assert ok.auth.scheme == "digest" and ok.track.codec == "h264"
        finally:
            ok.sock.close()
        with pytest.raises(RtspError, match="401"):
            open_session(SourceSpec(1, server.url("/digest"), "operator", "wrong", timeout_s=10))
