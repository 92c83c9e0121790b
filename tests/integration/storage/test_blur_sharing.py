"""Blurred segments are shared through the object store: one process blurs, the others fetch the copy.

Blurring is the hub's most expensive step (seconds of CPU per segment); with a stateless API tier a
player's requests reach any process, and each must not blur the same segment again. The copy is deleted
with its segment, so retention covers it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av

from civicam.domain.segments import partial_path, published_path
from civicam.live.privacy import BlurredCache, FaceBlur
from civicam.storage.models import Segment
from civicam.storage.s3 import S3Store
from support.rtsp import make_h264_file
from support.seaweedfs import SeaweedFS

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_segment_blurred_on_one_node_is_served_by_another(seaweed: SeaweedFS, s3_bucket: str, s3_prefix: str,
                                                             tmp_path: Path) -> None:
    node_a = S3Store(seaweed.client(), s3_bucket, tmp_path / "a" / "spool", prefix=s3_prefix)
    node_b = S3Store(seaweed.client(), s3_bucket, tmp_path / "b" / "spool", prefix=s3_prefix)
    part = partial_path(1, START)
    clip = make_h264_file(tmp_path / "clip.mp4", width=320, height=240, seconds=1)
    Path(node_a.spool(part)).write_bytes(clip.read_bytes())
    rel = published_path(part)
    node_a.publish(part, rel)
    seg = Segment(id=41, camera_id=1, path=rel)
    blurs: list[str] = []

    def counted(node: str) -> FaceBlur:
        blurs.append(node)
        return FaceBlur()

    cache_a = BlurredCache(tmp_path / "a" / "blurred", node_a, lambda: counted("a"))
    cache_b = BlurredCache(tmp_path / "b" / "blurred", node_b, lambda: counted("b"))
    made = cache_a.get(seg)
    fetched = cache_b.get(seg)
    assert blurs == ["a"]  # blurred once, on A; B fetched A's copy
    assert fetched.path != made.path and fetched.path.read_bytes() == made.path.read_bytes()
    assert fetched.init_bytes == made.init_bytes > 0
    with av.open(str(fetched.path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 25
    assert rel in {f.path for f in node_b.list()}
    assert not [f for f in node_b.list() if "blurred" in f.path]  # copies are not segments
    fresh = S3Store(seaweed.client(), s3_bucket, tmp_path / "c" / "spool", prefix=s3_prefix)
    assert fresh.usage().used == node_a.usage().used == Path(node_a.local_path(rel)).stat().st_size

    node_a.delete(rel)  # retention: the segment and its blurred copy go together
    assert not node_b.get_derived("blurred", rel, tmp_path / "again.mp4")
