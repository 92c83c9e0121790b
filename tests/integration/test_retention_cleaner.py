"""The retention cleaner against a real database: bounded passes that still reach every expired segment."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from civicam.context import Context
from civicam.domain.segments import partial_path, published_path
from civicam.ingest.recorder import SegmentDone
from civicam.ingest.service import recording_settings, store_for
from civicam.registry import service as registry
from civicam.storage.cleaner import clean
from civicam.storage.index import add_segment
from civicam.storage.models import Hold, RetentionRule, Segment
from support.hub import ACTOR

LOG = logging.getLogger("test.retention")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SIZE = 1000


def _cameras(ctx: Context) -> tuple[int, int, int]:
    with ctx.db.session() as s:
        region = registry.add_region(s, ACTOR, "region")
        short = registry.add_site(s, ACTOR, region, "short", "Contact", "c@example.org")
        normal = registry.add_site(s, ACTOR, region, "normal", "Contact", "c@example.org")
        a = registry.add_camera(s, ACTOR, ctx.secrets, short.id, "a", "rtsp://127.0.0.1:1/a")
        b = registry.add_camera(s, ACTOR, ctx.secrets, normal.id, "b", "rtsp://127.0.0.1:1/b")
        s.flush()
        s.add(RetentionRule(scope="site", scope_id=short.id, max_age_s=86400))  # one day at site "short"
        return short.id, a.id, b.id


def _record(ctx: Context, cam: int, ages_h: list[float]) -> dict[float, int]:
    """Segments (files and rows) of 60 s ending ``age`` hours before NOW; their ids by age."""
    store = store_for(ctx)
    ids = {}
    with ctx.db.session() as s:
        for age in ages_h:
            end = NOW - timedelta(hours=age)
            start = end - timedelta(seconds=60)
            part = partial_path(cam, start)
            with open(store.spool(part), "wb") as fh:
                fh.write(b"\0" * SIZE)
            final = published_path(part)
            store.publish(part, final)
            row = add_segment(s, SegmentDone(cam, final, start, end, SIZE, 1500, 30, 0, "h264", 1280, 720, "s"))
            s.flush()
            ids[age] = row.id
    return ids


def _left(ctx: Context) -> set[int]:
    with ctx.db.session() as s:
        return set(s.execute(select(Segment.id)).scalars())


def test_bounded_passes_delete_every_expired_segment_and_nothing_else(ctx: Context) -> None:
    _site, a, b = _cameras(ctx)
    a_ids = _record(ctx, a, [72, 60, 48, 36, 30, 20, 2])  # rule: 1 day
    b_ids = _record(ctx, b, [24 * 40, 24 * 35, 24 * 32, 24 * 10, 1])  # default: 30 days
    with ctx.db.session() as s:  # an evidence hold over b's 35-day-old segment
        held = s.get(Segment, b_ids[24 * 35])
        assert held is not None
        s.add(Hold(camera_id=b, start=held.start, end=held.end, kind="evidence", reason="case 7", created_by="t"))
    settings = recording_settings(ctx)
    store = store_for(ctx)
    passes = 0
    while True:
        decision = clean(ctx.db, store, settings, NOW, LOG, limit=2)
        if not decision.delete:
            break
        passes += 1
        assert len(decision.delete) <= 2 and set(decision.delete.values()) == {"age"}
        assert passes < 10
    expired = {a_ids[h] for h in (72, 60, 48, 36, 30)} | {b_ids[24 * 40], b_ids[24 * 32]}
    kept = {a_ids[20], a_ids[2], b_ids[24 * 35], b_ids[24 * 10], b_ids[1]}
    assert passes == 4  # seven expired segments, two a pass
    assert _left(ctx) == kept
    assert not expired & _left(ctx)
    with ctx.db.session() as s:  # files and rows agree: the deleted segments' files are gone too
        assert {f.path for f in store.list()} == set(s.execute(select(Segment.path)).scalars())


def test_quota_pass_takes_the_oldest_unheld_first(ctx: Context) -> None:
    _site, _a, b = _cameras(ctx)
    ids = _record(ctx, b, [24 * 9, 24 * 8, 24 * 7, 24 * 6, 24 * 5, 24 * 4])  # none expired (30 days)
    with ctx.db.session() as s:  # the two oldest are held
        first, second = s.get(Segment, ids[24 * 9]), s.get(Segment, ids[24 * 8])
        assert first is not None and second is not None
        s.add(Hold(camera_id=b, start=first.start, end=second.end, kind="evidence", reason="case 8", created_by="t"))
    # Quota of 5 segments: 6 used is over the 0.9 high watermark; down to 0.5 (2.5 segments) at most.
    settings = recording_settings(ctx).model_copy(update={"quota_bytes": 5 * SIZE, "high_watermark": 0.9,
                                                          "low_watermark": 0.5})
    decision = clean(ctx.db, store_for(ctx), settings, NOW, LOG, limit=3)
    # The batch of three skipped the held pair in SQL, so it reached the next oldest three.
    assert decision.delete == {ids[24 * 7]: "quota", ids[24 * 6]: "quota", ids[24 * 5]: "quota"}
    assert _left(ctx) == {ids[24 * 9], ids[24 * 8], ids[24 * 4]}
    assert store_for(ctx).usage().used == 3 * SIZE
