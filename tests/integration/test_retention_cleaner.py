"""The retention cleaner against a real database: bounded passes that still reach every expired segment."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from civicam.context import Context
from civicam.domain.segments import SegmentDone, partial_path, published_path
from civicam.ingest.service import recording_settings, store_for
from civicam.registry import service as registry
from civicam.storage.cleaner import clean, expire_exports
from civicam.storage.index import add_segment
from civicam.storage.models import Export, Hold, RetentionRule, Segment
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


def _exports(ctx: Context, cam: int, rows: dict[str, tuple[float, bool, str, str | None]]) -> dict[str, int]:
    """Export rows ``name: (age in days, unblurred, status, file)``; a file name is made in the hub's
    export folder, an absolute path is used as it is (the CLI writes where it is told)."""
    ids = {}
    exports = ctx.settings.data_dir / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    with ctx.db.session() as s:
        for name, (age_d, unblurred, status, file) in rows.items():
            path = None
            if file is not None:
                path = exports / file if not file.startswith("/") else Path(file)
                path.write_bytes(b"\0" * SIZE)
            made = NOW - timedelta(days=age_d)
            exp = Export(camera_id=cam, start=made - timedelta(hours=1), end=made - timedelta(minutes=59),
                         reason="incident", requested_by="op", status=status, path=str(path) if path else None,
                         bytes=SIZE if path else 0, unblurred=unblurred, created_at=made)
            s.add(exp)
            s.flush()
            ids[name] = exp.id
    return ids


def test_expired_exports_are_deleted_unless_under_an_evidence_hold(ctx: Context, tmp_path: Path) -> None:
    _site, a, b = _cameras(ctx)
    elsewhere = tmp_path / "cli-export.mp4"
    ids = _exports(ctx, a, {
        "old_unblurred": (8, True, "done", "e1.mp4"),
        "old_blurred": (30, False, "done", "e2.mp4"),
        "fresh": (6, True, "done", "e3.mp4"),
        "old_failed": (9, False, "failed", None),
        "old_cli": (9, False, "done", str(elsewhere)),
    })
    held = _exports(ctx, b, {"old_held": (10, True, "done", "e4.mp4"),
                             "old_export_hold_only": (11, False, "done", "e5.mp4")})
    with ctx.db.session() as s:  # an investigator's evidence hold over the interval of one old export
        exp = s.get(Export, held["old_held"])
        other = s.get(Export, held["old_export_hold_only"])
        assert exp is not None and other is not None
        s.add(Hold(camera_id=b, start=exp.start, end=exp.end, kind="evidence", reason="case 9", created_by="inv"))
        # A hold of the export kind (an export in progress) keeps segments, not other exports' files.
        s.add(Hold(camera_id=b, start=other.start, end=other.end, kind="export", reason="export: x",
                   created_by="op"))
        exp_path, other_path = exp.path, other.path
    settings = recording_settings(ctx)
    assert settings.export_max_age_days == 7
    gone = expire_exports(ctx.db, ctx.settings.data_dir / "exports", settings, NOW, LOG)
    assert sorted(gone) == sorted([ids["old_unblurred"], ids["old_blurred"], ids["old_cli"],
                                   held["old_export_hold_only"]])
    with ctx.db.session() as s:
        state = {e.id: (e.status, e.path) for e in s.execute(select(Export)).scalars()}
        holds = s.execute(select(Hold.kind, Hold.released_at)).tuples().all()
    exports = ctx.settings.data_dir / "exports"
    assert state[ids["old_unblurred"]] == ("expired", None) and not (exports / "e1.mp4").exists()
    assert state[ids["old_blurred"]] == ("expired", None) and not (exports / "e2.mp4").exists()
    assert state[ids["fresh"]] == ("done", str(exports / "e3.mp4")) and (exports / "e3.mp4").exists()
    assert state[ids["old_failed"]] == ("failed", None)
    # A file the CLI wrote outside the hub's folder is the operator's: the hub stops serving it, no more.
    assert state[ids["old_cli"]] == ("expired", None) and elsewhere.exists()
    assert state[held["old_held"]] == ("done", exp_path) and Path(str(exp_path)).exists()
    assert state[held["old_export_hold_only"]] == ("expired", None) and not Path(str(other_path)).exists()
    assert all(released is None for _kind, released in holds)  # retention releases no hold
    assert expire_exports(ctx.db, exports, settings, NOW, LOG) == []
