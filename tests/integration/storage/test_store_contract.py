"""The segment store contract, run against the local disk and SeaweedFS's S3 alike.

Whatever the backend: a segment written through the spool is invisible (to this process and to any other
reading the same store) until published, then whole; reads, byte ranges, listing, deletion and usage
agree; paths cannot escape; retention with holds deletes exactly what it decides, files and rows alike.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from civicam.context import Context
from civicam.domain.segments import partial_path, published_path
from civicam.ingest.recorder import SegmentDone
from civicam.ingest.service import recording_settings
from civicam.live.serving import segment_response
from civicam.registry import service as registry
from civicam.storage.backend import LocalDiskStore, SegmentStore
from civicam.storage.cleaner import clean
from civicam.storage.index import add_segment
from civicam.storage.models import Hold, Segment
from civicam.storage.s3 import S3Store
from support.hub import ACTOR
from support.seaweedfs import SeaweedFS

LOG = logging.getLogger("test.store")
START = datetime(2026, 12, 1, 10, 0, 0, 250_000, tzinfo=UTC)
MiB = 1024 * 1024

StoreMaker = Callable[[str], SegmentStore]
"""A store instance over the test's storage; the name gives each instance its own local folder (for S3, a
spool of its own: another node's view of the same bucket)."""


@pytest.fixture(params=["local", "s3"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    if request.param == "local":
        return lambda _name: LocalDiskStore(tmp_path / "recordings")
    seaweed: SeaweedFS = request.getfixturevalue("seaweed")
    bucket: str = request.getfixturevalue("s3_bucket")
    prefix: str = request.getfixturevalue("s3_prefix")
    return lambda name: S3Store(seaweed.client(), bucket, tmp_path / f"spool-{name}", prefix=prefix,
                                multipart_threshold=5 * MiB, cache_bytes=64 * MiB)


def _write(store: SegmentStore, rel_partial: str, data: bytes) -> None:
    with open(store.spool(rel_partial), "wb") as fh:
        fh.write(data)


def _read(store: SegmentStore, rel: str) -> bytes:
    with store.open(rel) as fh:
        return fh.read()


def test_write_publish_read_list_delete(make_store: StoreMaker) -> None:
    store, other = make_store("a"), make_store("b")
    data = os.urandom(300_000)
    part = partial_path(7, START)
    final = published_path(part)
    _write(store, part, data)
    # Written but not published: nobody sees a segment, only the partial in the writer's own listing.
    assert final not in {f.path for f in store.list()}
    assert final not in {f.path for f in other.list()}
    with pytest.raises(FileNotFoundError):
        _read(other, final)
    assert store.publish(part, final) == len(data)
    listed = {f.path: f.bytes for f in store.list()}
    assert listed.get(final) == len(data) and part not in listed
    assert _read(store, final) == data
    assert _read(other, final) == data  # another reader of the same store (a second node for S3)
    assert {f.path: f.bytes for f in other.list()}.get(final) == len(data)
    assert store.usage().used == len(data)
    assert store.delete(final) == len(data)
    assert store.delete(final) == 0
    assert final not in {f.path for f in make_store("c").list()}
    with pytest.raises(FileNotFoundError):
        _read(make_store("d"), final)
    assert store.usage().used == 0


def test_byte_ranges_of_a_published_segment(make_store: StoreMaker) -> None:
    """The HLS endpoints' init/media split and Range slices, read through a fresh reader."""
    store = make_store("a")
    data = os.urandom(50_000)
    part = partial_path(3, START)
    _write(store, part, data)
    store.publish(part, published_path(part))
    reader = make_store("b")
    path = reader.local_path(published_path(part))
    init = segment_response(path, 1000, "init.mp4")
    assert init.content == data[:1000]
    ranged = segment_response(path, 1000, "media", "bytes=100-4099")
    assert ranged.status_code == 206 and ranged.content == data[1100:5100]
    assert ranged.headers["Content-Range"] == f"bytes 100-4099/{len(data) - 1000}"
    tail = segment_response(path, 1000, "media", "bytes=-10")
    assert tail.content == data[-10:]
    assert segment_response(path, 1000, "media", "bytes=60000-").status_code == 416


def test_big_segment_goes_whole(make_store: StoreMaker) -> None:
    """Above the multipart threshold (5 MiB here) the upload is in parts; what is read is the whole file."""
    store = make_store("a")
    data = os.urandom(12 * MiB + 12345)
    part = partial_path(4, START)
    _write(store, part, data)
    assert store.publish(part, published_path(part)) == len(data)
    assert _read(make_store("b"), published_path(part)) == data
    if isinstance(store, S3Store):
        assert not store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix).get("Uploads")


def test_usage_counts_what_was_there_before(make_store: StoreMaker) -> None:
    store = make_store("a")
    for i in range(3):
        part = partial_path(5, START + timedelta(seconds=4 * i))
        _write(store, part, b"x" * (1000 + i))
        store.publish(part, published_path(part))
    _write(store, partial_path(5, START + timedelta(seconds=12)), b"y" * 500)  # a partial does not count
    assert make_store("a").usage().used == 3003


@pytest.mark.parametrize("rel", ["../outside.mp4", "cam00000001/../../x.mp4.partial", "/etc/passwd"])
def test_paths_cannot_escape(make_store: StoreMaker, rel: str) -> None:
    store = make_store("a")
    with pytest.raises(ValueError):
        store.spool(rel)
    with pytest.raises(ValueError):
        store.delete(rel)


def test_retention_with_holds(make_store: StoreMaker, sqlite_ctx: Context) -> None:
    """The cleaner deletes expired, unheld segments from the store and the index, and nothing else."""
    ctx = sqlite_ctx
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with ctx.db.session() as s:
        region = registry.add_region(s, ACTOR, "region")
        site = registry.add_site(s, ACTOR, region, "site", "Contact", "c@example.org")
        cam = registry.add_camera(s, ACTOR, ctx.secrets, site.id, "a", "rtsp://127.0.0.1:1/a").id
    store = make_store("a")
    ids: dict[int, int] = {}
    with ctx.db.session() as s:
        for age_days in (40, 35, 31, 10, 1):
            end = now - timedelta(days=age_days)
            start = end - timedelta(seconds=4)
            part = partial_path(cam, start)
            _write(store, part, os.urandom(2000))
            final = published_path(part)
            store.publish(part, final)
            ids[age_days] = add_segment(
                s, SegmentDone(cam, final, start, end, 2000, 100, 2, 0, "h264", 1280, 720, "s")).id
            s.flush()
        held = s.get(Segment, ids[35])
        assert held is not None
        s.add(Hold(camera_id=cam, start=held.start, end=held.end, kind="evidence", reason="case 9", created_by="t"))
    decision = clean(ctx.db, store, recording_settings(ctx), now, LOG)
    assert set(decision.delete) == {ids[40], ids[31]}  # default 30 days; the 35-day one is held
    with ctx.db.session() as s:
        rows = set(s.execute(select(Segment.path)).scalars())
    assert len(rows) == 3
    assert {f.path for f in make_store("fresh").list()} == rows  # the store agrees with the index
    assert store.usage().used == 3 * 2000
