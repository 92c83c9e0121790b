"""Applies the retention decision: loads rules, holds and the candidate segments, deletes files, then rows.

A city keeps hundreds of millions of segment rows, so a pass never loads them all: only segments that
have expired under their camera's rule, and, when space is short, the oldest unheld ones, each at most
``limit`` rows, oldest first. What is left over is taken by the next pass.

Exported clips expire too (``expire_exports``): after ``export_max_age_days``, unless an evidence hold
covers their interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from civicam.audit.log import Actor, record
from civicam.config.recording import RecordingSettings
from civicam.db.models import Camera, Site
from civicam.db.session import Database
from civicam.domain.retention import (
    AgeRule,
    Decision,
    HoldIndex,
    HoldSpan,
    Place,
    SegmentRef,
    Space,
    bytes_to_free,
    decide,
    max_age_for,
)
from civicam.storage.backend import SegmentStore
from civicam.storage.index import delete_segment_rows
from civicam.storage.models import Export, Hold, RetentionRule, Segment
from civicam.storage.partitions import day_tables, partitioned, retirable, retire


def space_of(store: SegmentStore, settings: RecordingSettings) -> Space:
    """The store's usage against the configured quota and reserve."""
    usage = store.usage()
    return Space(used=usage.used, quota=settings.quota_bytes, high=settings.high_watermark,
                 low=settings.low_watermark, free=usage.free, min_free=settings.min_free_bytes)


def recording_allowed(store: SegmentStore, settings: RecordingSettings) -> bool:
    """Whether a new segment may start: under the quota and above the free-space reserve."""
    space = space_of(store, settings)
    if space.quota > 0 and space.used >= space.quota:
        return False
    return space.free is None or space.free >= space.min_free


CANDIDATES_PER_PASS = 50_000
_CHUNK = 500  # camera ids per IN list


def _not_held(holds: list[HoldSpan]) -> ColumnElement[bool]:
    # Held segments are excluded in SQL, so a long hold cannot fill every batch and keep the cleaner from
    # reaching what it may delete; by one correlated NOT EXISTS on the holds table, never one clause per
    # hold (2,000 holds passed SQLite's expression depth limit). ``holds`` is what the caller read from the
    # same table; the decision and the late re-check use it.
    del holds
    return ~exists(select(Hold.id).where(Hold.released_at.is_(None), Hold.camera_id == Segment.camera_id,
                                         Hold.start < Segment.end, Hold.end > Segment.start))


def candidates(session: Session, now: datetime, places: dict[int, Place], rules: list[AgeRule],
               default_max_age: timedelta, holds: list[HoldSpan], space: Space,
               limit: int = CANDIDATES_PER_PASS) -> tuple[list[SegmentRef], bool]:
    """The segments a pass decides on, and whether a limit cut the list short (more remain)."""
    cols = select(Segment.id, Segment.camera_id, Segment.start, Segment.end, Segment.bytes)
    free = _not_held(holds)
    found: dict[int, SegmentRef] = {}
    cut = False
    # Expired: cameras grouped by their maximum age, so each query uses the (camera, start) index.
    by_age: dict[timedelta, list[int]] = {}
    for cam, place in places.items():
        by_age.setdefault(max_age_for(cam, place, rules, default_max_age), []).append(cam)
    for age, cams in sorted(by_age.items()):
        cutoff = now - age
        for i in range(0, len(cams), _CHUNK):
            left = limit - len(found)
            if left <= 0:
                return list(found.values()), True
            rows = session.execute(cols.where(Segment.camera_id.in_(cams[i:i + _CHUNK]), Segment.start < cutoff,
                                              Segment.end <= cutoff, free)
                                   .order_by(Segment.start).limit(left)).tuples().all()
            cut = cut or len(rows) == left
            found.update((r[0], SegmentRef(*r)) for r in rows)
    # Short of space: the oldest unheld segments, enough to cover what must be freed.
    need = bytes_to_free(space) - sum(s.bytes for s in found.values())
    if need > 0:
        rows = session.execute(cols.where(free).order_by(Segment.start, Segment.id).limit(limit)).tuples().all()
        cut = cut or len(rows) == limit
        for r in rows:
            if need <= 0:
                break
            if r[0] not in found:
                found[r[0]] = SegmentRef(*r)
                need -= r[4]
    return list(found.values()), cut


def retire_days(db: Database, store: SegmentStore, now: datetime, longest: timedelta, holds: list[HoldSpan],
                logger: logging.Logger, on_delete: Callable[[int], None] | None, limit: int) -> int:
    """Whole days whose every segment has expired under the longest rule and that no hold touches leave the
    index as one partition (PostgreSQL), their files after them; a day left half done by a crash is
    finished first. Returns the files deleted (at most ``limit``)."""
    with db.engine.connect() as conn:
        tables = day_tables(conn)
    todo = [t for t in tables if not t.attached] + retirable(tables, now - longest, holds)
    deleted = 0
    for table in todo:
        if deleted >= limit:
            break

        def drop_file(seg_id: int, path: str) -> None:
            store.delete(path)
            if on_delete is not None:
                on_delete(seg_id)

        try:
            n, _ = retire(db.engine, table, drop_file, logger, limit - deleted)
        except Exception:  # noqa: BLE001  (a lock not had in time): the next pass tries again
            logger.exception("could not retire the day %s", table.day.isoformat())
            break
        deleted += n
    return deleted


def clean(db: Database, store: SegmentStore, settings: RecordingSettings, now: datetime,
          logger: logging.Logger, on_delete: Callable[[int], None] | None = None,
          limit: int = CANDIDATES_PER_PASS) -> Decision:
    """One retention pass; held intervals are never deleted."""
    default_max_age = timedelta(days=settings.default_max_age_days)
    space = space_of(store, settings)
    with db.session() as session:
        holds = [HoldSpan(c, s, e) for c, s, e in session.execute(
            select(Hold.camera_id, Hold.start, Hold.end).where(Hold.released_at.is_(None))).tuples()]
        rules = [AgeRule(sc, sid, timedelta(seconds=age)) for sc, sid, age in session.execute(
            select(RetentionRule.scope, RetentionRule.scope_id, RetentionRule.max_age_s)).tuples()]
        places = {cid: Place(sid, rid) for cid, sid, rid in session.execute(
            select(Camera.id, Camera.site_id, Site.region_id).join(Site, Site.id == Camera.site_id)).tuples()}
    if partitioned(db.engine):
        limit -= retire_days(db, store, now, max([default_max_age, *(r.max_age for r in rules)]), holds, logger,
                             on_delete, limit)
        if limit <= 0:
            return Decision()  # the whole pass went on whole days; the rest waits for the next one
        space = space_of(store, settings)
    with db.session() as session:
        segs, more = candidates(session, now, places, rules, default_max_age, holds, space, limit)
    decision = decide(segs, now=now, places=places, rules=rules, default_max_age=default_max_age, holds=holds,
                      space=space)
    if not decision.delete:
        if decision.still_short and not more:
            logger.warning("recording storage is full and every segment is held; recording stays paused")
        return decision
    paths: dict[int, str] = {}
    with db.session() as session:
        ids = list(decision.delete)
        for i in range(0, len(ids), 500):
            paths.update(dict(session.execute(
                select(Segment.id, Segment.path).where(Segment.id.in_(ids[i:i + 500]))).tuples().all()))
        # Holds created since the decision was taken win: re-check them before anything is removed.
        late = [HoldSpan(c, s, e) for c, s, e in session.execute(
            select(Hold.camera_id, Hold.start, Hold.end).where(Hold.released_at.is_(None))).tuples()]
    by_id = {s.id: s for s in segs}
    late_index = HoldIndex(late)
    doomed = [i for i in paths if not late_index.held(by_id[i])]
    # Rows go first: a row without a file is worse for playback than a file without a row,
    # which the next start-up reconcile indexes or removes anyway.
    with db.session() as session:
        delete_segment_rows(session, doomed)
    for seg_id in doomed:
        store.delete(paths[seg_id])
        if on_delete is not None:
            on_delete(seg_id)
    logger.info("retention deleted %d segments (%d bytes)", len(doomed), sum(by_id[i].bytes for i in doomed))
    return decision


RETENTION = Actor(name="system:retention", source="hub", role="admin")
EXPORTS_PER_PASS = 1000


def expire_exports(db: Database, export_dir: Path, settings: RecordingSettings, now: datetime,
                   logger: logging.Logger, limit: int = EXPORTS_PER_PASS) -> list[int]:
    """Exports done more than ``export_max_age_days`` ago: rows marked expired (so nobody is served them
    again) and audited, then their files deleted; the ids expired.

    An export whose interval an active evidence hold covers is kept (the hold's creator keeps the
    evidence, whoever exported it); no hold is released. Only files in the hub's own export folder are
    deleted: a file the CLI wrote where its operator said is theirs.
    """
    cutoff = now - timedelta(days=settings.export_max_age_days)
    root = export_dir.resolve()
    files: list[str] = []
    with db.session() as session:
        holds = [HoldSpan(c, s, e) for c, s, e in session.execute(
            select(Hold.camera_id, Hold.start, Hold.end).where(
                Hold.released_at.is_(None), Hold.kind == "evidence")).tuples()]
        rows = session.execute(select(Export).where(Export.status == "done", Export.created_at < cutoff)
                               .order_by(Export.id).limit(limit)).scalars().all()
        index = HoldIndex(holds)
        expired = [e for e in rows if not index.held(SegmentRef(e.id, e.camera_id, e.start, e.end, e.bytes))]
        for exp in expired:
            if exp.path:
                files.append(exp.path)
            exp.status, exp.path = "expired", None
            record(session, RETENTION, "recording.export.expire", "camera", exp.camera_id,
                   {"export_id": exp.id, "unblurred": exp.unblurred, "created_at": exp.created_at.isoformat()})
    # Rows first (as for segments): a file without a row is never served, a row without a file would be.
    for name in files:
        path = Path(name).resolve()
        if path.is_relative_to(root):
            path.unlink(missing_ok=True)
    if expired:
        logger.info("retention expired %d exports", len(expired))
    return [e.id for e in expired]
