"""Start-up repair over a bucket: objects without a row are indexed, unless just written by another recorder."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from civicam.context import Context
from civicam.domain.segments import partial_path, published_path
from civicam.registry import service as registry
from civicam.storage.models import Segment
from civicam.storage.reconcile import reconcile
from civicam.storage.s3 import S3Store
from support.hub import ACTOR
from support.rtsp import make_h264_file
from support.seaweedfs import SeaweedFS

LOG = logging.getLogger("test.s3repair")


def test_unindexed_objects_are_indexed_after_the_settling_time(seaweed: SeaweedFS, s3_bucket: str,
                                                               s3_prefix: str, sqlite_ctx: Context,
                                                               tmp_path: Path) -> None:
    with sqlite_ctx.db.session() as s:
        region = registry.add_region(s, ACTOR, "region")
        site = registry.add_site(s, ACTOR, region, "site", "Contact", "c@example.org")
        cam = registry.add_camera(s, ACTOR, sqlite_ctx.secrets, site.id, "a", "rtsp://127.0.0.1:1/a").id
    writer = S3Store(seaweed.client(), s3_bucket, tmp_path / "writer", prefix=s3_prefix)
    part = partial_path(cam, datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    clip = make_h264_file(tmp_path / "clip.mp4", width=320, height=240, seconds=1)
    Path(writer.spool(part)).write_bytes(clip.read_bytes())
    writer.publish(part, published_path(part))  # uploaded; its writer has not indexed it (yet)

    other = S3Store(seaweed.client(), s3_bucket, tmp_path / "other", prefix=s3_prefix, settle_s=3600)
    report = reconcile(sqlite_ctx.db, other, LOG)
    assert report.settling == 1 and report.indexed == 0  # left to the recorder that wrote it
    single = S3Store(seaweed.client(), s3_bucket, tmp_path / "single", prefix=s3_prefix)
    report = reconcile(sqlite_ctx.db, single, LOG)
    assert report.settling == 0 and report.indexed == 1
    with sqlite_ctx.db.session() as s:
        row = s.execute(select(Segment)).scalar_one()
        assert row.path == published_path(part) and row.frames == 25 and row.session == "recovered"
