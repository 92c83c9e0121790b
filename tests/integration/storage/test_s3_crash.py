"""Crash safety of the S3 path: the recorder process SIGKILLed in the middle of a multipart upload.

The recorder (``python -m civicam.ingest.runner``, a real RTSP camera, SeaweedFS behind a loopback proxy)
records segments of ~7 MB, which go up in two parts. The proxy lets the first part through and stalls the
second, the process is killed there: no object for that segment may exist, every object is a whole,
decodable segment, and after the restart's repair the index and the bucket list the same segments.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
from sqlalchemy import select

from civicam.db.session import Database
from civicam.domain.segments import published_path
from civicam.storage.factory import open_store
from civicam.storage.models import Segment
from civicam.storage.reconcile import reconcile
from civicam.storage.s3 import S3Store
from support.cityhub import add_cameras, file_mount, new_context, wait_for
from support.rtsp import RtspServer, gst_rtsp_available
from support.seaweedfs import SeaweedFS
from support.services import require
from support.tcp_proxy import LoopbackProxy

LOG = logging.getLogger("test.s3crash")
MiB = 1024 * 1024
pytestmark = [pytest.mark.rtsp, pytest.mark.slow, pytest.mark.timeout(300)]


def _noisy_clip(path: Path) -> Path:
    """4 s of 1280x720 noise at ~14 Mbit/s (2 s GOP, no B-frames): a 4 s segment is ~7 MB, two 5 MiB parts."""
    ffmpeg = shutil.which("ffmpeg")
    require(ffmpeg is not None, "ffmpeg")
    assert ffmpeg is not None
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=1280x720:rate=25", "-vf", "noise=alls=60:allf=t", "-t", "4",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "50",
                    "-keyint_min", "50", "-sc_threshold", "0", "-b:v", "14M", "-maxrate", "14M", "-bufsize", "14M",
                    "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(path)], check=True, timeout=120)
    return path


def _rows(db: Database) -> dict[str, tuple[int, int]]:
    with db.session() as s:
        return {p: (b, f) for p, b, f in s.execute(select(Segment.path, Segment.bytes, Segment.frames)).tuples()}


def test_sigkill_mid_multipart_upload(seaweed: SeaweedFS, s3_bucket: str, s3_prefix: str, tmp_path: Path) -> None:
    require(gst_rtsp_available(), "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    clip = _noisy_clip(tmp_path / "noise.h264")
    s3_port = int(seaweed.endpoint.rsplit(":", 1)[1])
    with RtspServer([file_mount("/cam", clip)]) as server, LoopbackProxy(s3_port) as proxy:
        ctx = new_context(tmp_path / "hub", f"sqlite:///{tmp_path / 'civicam.db'}")
        try:
            add_cameras(ctx, [server.url("/cam")])
            storage_env = {**seaweed.env(s3_bucket, s3_prefix),
                           "CIVICAM_STORAGE__MULTIPART_THRESHOLD_BYTES": str(5 * MiB)}
            env = {**os.environ, **storage_env, "CIVICAM_DATA_DIR": str(ctx.settings.data_dir),
                   "CIVICAM_DATABASE_URL": ctx.settings.effective_database_url,
                   "CIVICAM_RECORDING__SEGMENT_TARGET_S": "4", "CIVICAM_RECORDING__MIN_FREE_BYTES": "0",
                   "CIVICAM_STORAGE__ENDPOINT_URL": proxy.url}
            with open(tmp_path / "recorder.log", "wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "civicam.ingest.runner"], env=env,
                                        stdout=log, stderr=log)
                try:
                    # Uploads go through while the link is good: a first segment is indexed (upload, then index).
                    wait_for(lambda: _rows(ctx.db), 60, "a first segment uploaded and indexed")
                    proxy.arm(b"partNumber=2")
                    assert proxy.stalled.wait(60), "no multipart upload reached its second part"
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait(10)

            direct = S3Store(seaweed.client(), s3_bucket, tmp_path / "reader-spool", prefix=s3_prefix)
            uploads = direct.client.list_multipart_uploads(Bucket=s3_bucket, Prefix=s3_prefix).get("Uploads", [])
            assert len(uploads) == 1  # killed mid-upload: one unfinished multipart upload
            cut = uploads[0]["Key"][len(s3_prefix):]
            objects = {f.path: f.bytes for f in direct.list()}
            assert cut not in objects  # not visible: no half segment
            assert cut not in _rows(ctx.db)  # nor indexed: indexing comes after the upload
            for rel, size in objects.items():  # and every object that is there is whole
                assert size > 5 * MiB
                with av.open(direct.local_path(rel)) as c:
                    assert sum(1 for _ in c.demux(video=0)) >= 95  # ~4 s at 25 fps, less a frame or so

            # The restart: repair through the hub's own settings (the spool the killed recorder used).
            restarted = ctx.settings.model_copy(update={"storage": ctx.settings.storage.model_validate(
                {"backend": "s3", "endpoint_url": seaweed.endpoint, "bucket": s3_bucket, "prefix": s3_prefix,
                 "access_key_id": storage_env["CIVICAM_STORAGE__ACCESS_KEY_ID"],
                 "secret_access_key": storage_env["CIVICAM_STORAGE__SECRET_ACCESS_KEY"]})})
            store = open_store(restarted)
            assert isinstance(store, S3Store)
            spool_partials = [f.path for f in store.list() if f.path.endswith(".partial")]
            assert cut + ".partial" in spool_partials  # the cut segment is still whole in the local spool
            report = reconcile(ctx.db, store, LOG)
            assert report.repaired >= 1
            rows = _rows(ctx.db)
            listed = {f.path: f.bytes for f in direct.list()}
            assert set(rows) == set(listed) and cut in rows  # index = store, the cut segment recovered
            assert all(rows[p][0] == listed[p] for p in rows)
            assert published_path(cut + ".partial") == cut
            with av.open(direct.local_path(cut)) as c:
                assert sum(1 for _ in c.demux(video=0)) >= rows[cut][1] > 0
            assert store.abort_stale_uploads(0) == 1  # the killed upload's parts, freed
            assert not store.client.list_multipart_uploads(Bucket=s3_bucket, Prefix=s3_prefix).get("Uploads")
        finally:
            ctx.close()
