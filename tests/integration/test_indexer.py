"""The Indexer against a real database (SQLite and PostgreSQL, where it writes with COPY): order, gaps, bad rows."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from civicam.context import Context
from civicam.domain.segments import segment_path
from civicam.ingest.recorder import SegmentDone
from civicam.registry import service as registry
from civicam.storage.index import Indexer, gaps_between, segments_between
from civicam.storage.models import Segment
from support.hub import ACTOR

T0 = datetime(2026, 11, 30, 23, 59, 50, tzinfo=UTC)  # across midnight: two days (two partitions on PostgreSQL)


def _cameras(ctx: Context, n: int) -> list[int]:
    with ctx.db.session() as s:
        region = registry.add_region(s, ACTOR, "region")
        site = registry.add_site(s, ACTOR, region, "site", "Contact", "c@example.org")
        cams = [registry.add_camera(s, ACTOR, ctx.secrets, site.id, f"c{k}", f"rtsp://127.0.0.1:1/{k}")
                for k in range(n)]
        s.flush()
        return [c.id for c in cams]


def _done(cam: int, start: datetime, seconds: float = 4.0) -> SegmentDone:
    return SegmentDone(cam, segment_path(cam, start), start, start + timedelta(seconds=seconds), 1000, 100, 2, 700,
                       "h264", 1280, 720, "s1")


def test_one_batch_keeps_the_order_of_segments_and_gaps(ctx: Context) -> None:
    a, b = _cameras(ctx, 2)
    indexer = Indexer(ctx.db, logging.getLogger("test.indexer"), linger_s=1.0)  # all queued below: one batch
    indexer.start()
    try:
        for k in range(3):
            indexer.segment(_done(a, T0 + timedelta(seconds=4 * k)))
        lost = T0 + timedelta(seconds=12)
        indexer.gap(a, lost, "stream_lost", "reset by peer")
        indexer.segment(_done(b, T0))
        back = T0 + timedelta(seconds=20)
        indexer.segment(_done(a, back))
        indexer.gap(b, T0 + timedelta(seconds=4), "stream_lost", "timeout")  # still open at the end
        assert indexer.flush(30)
    finally:
        indexer.close()
    with ctx.db.session() as s:
        segs = segments_between(s, a, None, None)
        assert [g.start for g in segs] == [T0, T0 + timedelta(seconds=4), T0 + timedelta(seconds=8), back]
        assert [g.seq for g in segs] == [0, 1, 2, 3]
        (gap,) = gaps_between(s, a, None, None)
        assert (gap.start, gap.end, gap.reason) == (lost, back, "stream_lost")  # closed by the next segment
        (open_gap,) = gaps_between(s, b, None, None)
        assert open_gap.end is None
        assert [g.seq for g in segments_between(s, b, None, None)] == [0]
    # A restarted writer knows nothing: it learns b's sequence and open gap from the database (in one
    # query per batch of cameras) and goes on from them.
    again = Indexer(ctx.db, logging.getLogger("test.indexer"), linger_s=0.05)
    again.start()
    resumed = T0 + timedelta(seconds=30)
    try:
        again.segment(_done(b, resumed))
        assert again.flush(30)
    finally:
        again.close()
    with ctx.db.session() as s:
        assert [g.seq for g in segments_between(s, b, None, None)] == [0, 1]
        (closed,) = gaps_between(s, b, None, None)
        assert closed.end == resumed


def test_a_bad_row_does_not_lose_the_rest_of_its_batch(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    (cam,) = _cameras(ctx, 1)
    indexer = Indexer(ctx.db, logging.getLogger("test.indexer"), linger_s=1.0)
    indexer.start()
    try:
        starts = [T0 + timedelta(seconds=4 * k) for k in range(5)]
        for t in starts[:3]:
            indexer.segment(_done(cam, t))
        indexer.segment(_done(cam, starts[1]))  # the same file twice: the unique path refuses it
        for t in starts[3:]:
            indexer.segment(_done(cam, t))
        assert indexer.flush(30)
    finally:
        indexer.close()
    with ctx.db.session() as s:
        rows = s.execute(select(Segment.start, Segment.seq).where(Segment.camera_id == cam)
                         .order_by(Segment.start)).tuples().all()
    assert [r[0] for r in rows] == starts  # every good row, once
    assert len({r[1] for r in rows}) == 5  # sequence numbers stay unique
    assert "recording index write failed" in caplog.text
