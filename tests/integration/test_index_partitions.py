"""The segment index's day partitions on the real PostgreSQL: made on demand, retired whole, migrated into."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from civicam.context import Context, open_context
from civicam.db.session import alembic_config
from civicam.domain.segments import partial_path, published_path
from civicam.ingest.recorder import SegmentDone
from civicam.ingest.service import recording_settings, store_for
from civicam.registry import service as registry
from civicam.storage.cleaner import clean
from civicam.storage.index import Indexer, segments_between
from civicam.storage.models import Hold, Segment
from civicam.storage.partitions import day_tables, ensure_days, forget
from support.databases import PostgresTemplates
from support.hub import ACTOR, make_settings
from support.services import require

pytestmark = pytest.mark.postgres
LOG = logging.getLogger("test.partitions")
DAY = datetime(2026, 11, 20, tzinfo=UTC)
SIZE = 1000


@pytest.fixture
def pg_ctx(postgres_templates: PostgresTemplates | None, tmp_path: Path) -> Iterator[Context]:
    require(postgres_templates is not None, "PostgreSQL at 127.0.0.1:5432")
    assert postgres_templates is not None
    url = postgres_templates.fresh()
    ctx = open_context(make_settings(tmp_path / "data", url), create=True)
    forget(ctx.db.engine)  # what another test's database had is not this one's
    yield ctx
    ctx.close()
    postgres_templates.drop(url)


def _camera(ctx: Context) -> int:
    with ctx.db.session() as s:
        region = registry.add_region(s, ACTOR, "region")
        site = registry.add_site(s, ACTOR, region, "site", "Contact", "c@example.org")
        cam = registry.add_camera(s, ACTOR, ctx.secrets, site.id, "a", "rtsp://127.0.0.1:1/a")
        s.flush()
        return cam.id


def _segment(ctx: Context, cam: int, start: datetime) -> SegmentDone:
    """A published 60 s segment file and what the recorder reports about it."""
    store = store_for(ctx)
    part = partial_path(cam, start)
    with open(store.spool(part), "wb") as fh:
        fh.write(b"\0" * SIZE)
    final = published_path(part)
    store.publish(part, final)
    return SegmentDone(cam, final, start, start + timedelta(seconds=60), SIZE, 1500, 30, 0, "h264", 1280, 720, "s")


def _index(ctx: Context, done: list[SegmentDone]) -> None:
    indexer = Indexer(ctx.db, LOG, linger_s=0.05)
    indexer.start()
    for d in done:
        indexer.segment(d)
    assert indexer.flush(30)
    indexer.close()


def _rows_by_table(ctx: Context) -> dict[str, int]:
    with ctx.db.engine.connect() as conn:
        return {str(t): int(n) for t, n in conn.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM recording_segments GROUP BY 1")).tuples()}


def test_the_indexer_writes_each_day_to_its_own_partition(pg_ctx: Context) -> None:
    cam = _camera(pg_ctx)
    starts = [DAY + timedelta(hours=h) for h in (1, 23, 25, 47)]  # two on each of two days
    _index(pg_ctx, [_segment(pg_ctx, cam, t) for t in starts])
    assert _rows_by_table(pg_ctx) == {"recording_segments_p20261120": 2, "recording_segments_p20261121": 2}
    with pg_ctx.db.engine.connect() as conn:
        days = {t.day for t in day_tables(conn)}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert {DAY.date(), (DAY + timedelta(days=1)).date(), tomorrow} <= days  # made ahead for midnight
    with pg_ctx.db.session() as s:  # playback reads across the days in order, ids unique and ascending
        segs = segments_between(s, cam, DAY, DAY + timedelta(days=2))
        assert [g.start for g in segs] == starts
        assert [g.seq for g in segs] == [0, 1, 2, 3]
        assert len({g.id for g in segs}) == 4
        one = s.get(Segment, segs[2].id)  # served by id (HLS URIs): the partition key is not needed
        assert one is not None and one.start == starts[2]


def test_retention_drops_a_whole_expired_day_and_keeps_a_held_one(pg_ctx: Context) -> None:
    cam = _camera(pg_ctx)
    starts = [DAY + timedelta(days=d, hours=h) for d in range(3) for h in (3, 9, 15)]
    _index(pg_ctx, [_segment(pg_ctx, cam, t) for t in starts])
    held = starts[4]  # day 2's middle segment is under an evidence hold
    with pg_ctx.db.session() as s:
        s.add(Hold(camera_id=cam, start=held, end=held + timedelta(seconds=60), kind="evidence", reason="case 9",
                   created_by="t"))
    settings = recording_settings(pg_ctx)
    # 30-day default: day 1 has wholly expired, so has day 2 but for its hold; day 3 up to 12:00.
    now = DAY + timedelta(days=30 + 2, hours=12)
    store = store_for(pg_ctx)
    deleted: list[int] = []
    clean(pg_ctx.db, store, settings, now, LOG, on_delete=deleted.append)
    with pg_ctx.db.engine.connect() as conn:
        attached = {t.name for t in day_tables(conn) if t.attached}
        every = {t.name for t in day_tables(conn)}
    assert "recording_segments_p20261120" not in every  # retired whole: detached and dropped
    assert "recording_segments_p20261121" in attached  # a hold touches it: it stays, row by row
    with pg_ctx.db.session() as s:
        left = [g.start for g in s.execute(select(Segment).order_by(Segment.start)).scalars()]
        paths = set(s.execute(select(Segment.path)).scalars())
    assert left == [held, starts[8]]  # the rest of day 2 and day 3's morning went row by row
    assert {f.path for f in store.list()} == paths  # files follow rows
    assert len(deleted) == 7


def test_a_retirement_cut_short_is_finished_by_later_passes(pg_ctx: Context) -> None:
    cam = _camera(pg_ctx)
    starts = [DAY + timedelta(minutes=10 * k) for k in range(7)]
    _index(pg_ctx, [_segment(pg_ctx, cam, t) for t in starts])
    store = store_for(pg_ctx)
    settings = recording_settings(pg_ctx)
    now = DAY + timedelta(days=40)
    passes = 0
    while True:
        with pg_ctx.db.engine.connect() as conn:
            if not any(t.day == DAY.date() for t in day_tables(conn)):  # (tomorrow's, made ahead, stays)
                break
        clean(pg_ctx.db, store, settings, now, LOG, limit=3)
        passes += 1
        with pg_ctx.db.session() as s:  # the day left the index at the first pass, before its files
            assert s.execute(select(Segment.id)).first() is None
        assert passes < 6
    assert passes == 3  # 7 files, at most 3 a pass
    assert list(store.list()) == []


def test_upgrade_moves_existing_segments_into_day_partitions(postgres_templates: PostgresTemplates | None) -> None:
    """A hub on the single table (migration 0005) keeps every row, id and path through 0008."""
    require(postgres_templates is not None, "PostgreSQL at 127.0.0.1:5432")
    assert postgres_templates is not None
    from alembic import command

    url = postgres_templates.fresh()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:  # back to the single table, as a hub before 0008 had it
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005_camera_query_secrets")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO regions (id, name, created_at) VALUES (1, 'r', now())"))
            conn.execute(text("INSERT INTO sites (id, region_id, name, contact_name, contact_email, created_at) "
                              "VALUES (1, 1, 's', 'c', 'c@example.org', now())"))
            conn.execute(text("INSERT INTO cameras (id, site_id, name, url, status, created_at) "
                              "VALUES (1, 1, 'a', 'rtsp://127.0.0.1/a', 'accepted', now())"))
            for k in range(5):
                conn.execute(text(
                    'INSERT INTO recording_segments (camera_id, seq, start, "end", path, bytes, keyframes, frames, '
                    "init_bytes, codec, width, height, session, created_at) VALUES (1, :k, :s, :e, :p, 1, 1, 1, 0, "
                    "'h264', 1, 1, 's', now())"),
                    {"k": k, "s": DAY + timedelta(hours=11 * k), "e": DAY + timedelta(hours=11 * k, seconds=4),
                     "p": f"cam00000001/{k}.mp4"})
            before = conn.execute(text("SELECT id, path FROM recording_segments ORDER BY id")).tuples().all()
            assert conn.execute(text("SELECT to_regclass('recording_segments_default')")).scalar_one() is None
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.begin() as conn:
            after = conn.execute(text("SELECT id, path FROM recording_segments ORDER BY id")).tuples().all()
            tables = dict(conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM recording_segments "
                                            "GROUP BY 1")).tuples().all())
            new_id = conn.execute(text(
                'INSERT INTO recording_segments (camera_id, seq, start, "end", path, bytes, keyframes, frames, '
                "init_bytes, codec, width, height, session, created_at) VALUES (1, 9, :s, :s, 'x.mp4', 1, 1, 1, 0, "
                "'h264', 1, 1, 's', now()) RETURNING id"), {"s": DAY}).scalar_one()
        assert after == before
        # 0, 11 and 22 hours after midnight on the 20th, 33 and 44 on the 21st
        assert tables == {"recording_segments_p20261120": 3, "recording_segments_p20261121": 2}
        assert new_id > max(i for i, _ in before)  # the id sequence carried over
    finally:
        engine.dispose()
        postgres_templates.drop(url)


def test_a_day_already_made_elsewhere_is_not_an_error(pg_ctx: Context) -> None:
    """Two writer processes may both make the same day; the second finds it and goes on."""
    engine = pg_ctx.db.engine
    ensure_days(engine, [DAY.date()])
    forget(engine)  # as a second process would: it does not know the day exists
    ensure_days(engine, [DAY.date()])
    with engine.connect() as conn:
        assert [t.day for t in day_tables(conn) if t.day == DAY.date()] == [DAY.date()]
