"""The native RTSP engine against the real GStreamer server: auth, decodable segments, fallback, no leaks."""

from __future__ import annotations

import logging
import subprocess
from datetime import timedelta
from pathlib import Path

import av
import pytest
from recording_helpers import LOG, add_cameras, fast_settings, file_mount, new_context, wait_for

from civicam.context import Context
from civicam.ingest import native
from civicam.ingest.service import RecordingService
from civicam.storage.index import segments_between
from civicam.storage.media import probe
from civicam.storage.models import Segment
from support.rtsp import RtspServer

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]
SECRET = "N0t-in-logs!"


def _segments(ctx: Context, cam: int) -> list[Segment]:
    with ctx.db.session() as s:
        return list(segments_between(s, cam, None, None))


def test_native_records_authenticated_camera_continuously(clip: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mounts = [{**file_mount("/auth", clip), "auth": {"user": "operator", "password": SECRET}},
              file_mount("/open", clip)]
    with RtspServer(mounts) as server:
        ctx = new_context(tmp_path)
        service: RecordingService | None = None
        try:
            cams = add_cameras(ctx, [server.url("/auth", "operator", SECRET), server.url("/open"),
                                     server.url("/auth", "operator", "wrong")])
            service = RecordingService(ctx, LOG, settings=fast_settings(engine="native"))
            service.start()
            svc = service
            wait_for(lambda: all(svc.health()[c].segments >= 4 for c in cams[:2]), 40, "four segments per camera")
            bad = svc.health()[cams[2]]
            assert bad.segments == 0 and bad.last_error and "401" in bad.last_error
        finally:
            if service is not None:
                service.close()
        for cam in cams[:2]:
            segs = _segments(ctx, cam)
            assert len(segs) >= 4
            for a, b in zip(segs, segs[1:], strict=False):
                assert a.end == b.start, "segments of one connection must be contiguous"
            for seg in segs:
                path = service.store.local_path(seg.path)
                info = probe(path)
                assert info.codec == "h264" and (info.width, info.height) == (1280, 720)
                assert info.frames == seg.frames and info.keyframes == seg.keyframes
                assert info.init_bytes == seg.init_bytes
                assert abs(info.duration_s - (seg.end - seg.start).total_seconds()) < 1e-3
                with av.open(path) as c:
                    assert sum(1 for _ in c.decode(video=0)) == seg.frames
            done = subprocess.run(["ffmpeg", "-v", "error", "-i", service.store.local_path(segs[1].path),
                                   "-f", "null", "-"], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and done.stderr == ""
            # 2 s segments from a 2 s GOP: each one is whole GOPs, and time adds up with the frame count.
            assert all(abs((s.end - s.start) - timedelta(seconds=s.frames / 25)) < timedelta(milliseconds=2)
                       for s in segs)
        ctx.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text and "wrong" not in text


def test_unsupported_codec_falls_back_to_pyav(tmp_path: Path) -> None:
    mounts = [{"path": "/mjpeg", "source": "test", "codec": "mjpeg", "width": 320, "height": 240, "fps": 10}]
    with RtspServer(mounts) as server:
        ctx = new_context(tmp_path)
        service = RecordingService(ctx, LOG, settings=fast_settings(engine="native"))
        try:
            (cam,) = add_cameras(ctx, [server.url("/mjpeg")])
            service.start()
            wait_for(lambda: service.health()[cam].segments >= 1, 40, "a segment recorded by the PyAV fallback")
        finally:
            service.close()
        seg = _segments(ctx, cam)[0]
        assert seg.codec == "mjpeg"
        assert (cam, server.url("/mjpeg")) in native._pyav_only  # noqa: SLF001
        ctx.close()


def test_native_records_h265(tmp_path: Path) -> None:
    """H.265 over RTP (RFC 7798) from a live x265 encoder: hvcC init section, decodable segments."""
    mounts = [{"path": "/hevc", "source": "test", "codec": "h265", "width": 320, "height": 240, "fps": 10,
               "bitrate_kbps": 300}]
    with RtspServer(mounts) as server:
        ctx = new_context(tmp_path)
        service = RecordingService(ctx, LOG, settings=fast_settings(engine="native"))
        try:
            (cam,) = add_cameras(ctx, [server.url("/hevc")])
            service.start()
            wait_for(lambda: service.health()[cam].segments >= 2, 60, "two H.265 segments")
        finally:
            service.close()
        assert (cam, server.url("/hevc")) not in native._pyav_only  # noqa: SLF001
        for seg in _segments(ctx, cam):
            info = probe(service.store.local_path(seg.path))
            assert info.codec == "hevc" and (info.width, info.height) == (320, 240) and info.frames == seg.frames
            with av.open(service.store.local_path(seg.path)) as c:
                assert sum(1 for _ in c.decode(video=0)) == seg.frames
        ctx.close()
