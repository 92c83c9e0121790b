"""Applies the retention decision: loads rules, holds and segments, deletes files, then their rows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select

from civicam.config.recording import RecordingSettings
from civicam.db.models import Camera, Site
from civicam.db.session import Database
from civicam.domain.retention import AgeRule, Decision, HoldSpan, Place, SegmentRef, Space, decide, is_held
from civicam.storage.backend import SegmentStore
from civicam.storage.index import delete_segment_rows
from civicam.storage.models import Hold, RetentionRule, Segment


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


def clean(db: Database, store: SegmentStore, settings: RecordingSettings, now: datetime,
          logger: logging.Logger, on_delete: Callable[[int], None] | None = None) -> Decision:
    """One retention pass; held intervals are never deleted."""
    with db.session() as session:
        segs = [SegmentRef(i, c, s, e, b) for i, c, s, e, b in session.execute(
            select(Segment.id, Segment.camera_id, Segment.start, Segment.end, Segment.bytes)).tuples()]
        holds = [HoldSpan(c, s, e) for c, s, e in session.execute(
            select(Hold.camera_id, Hold.start, Hold.end).where(Hold.released_at.is_(None))).tuples()]
        rules = [AgeRule(sc, sid, timedelta(seconds=age)) for sc, sid, age in session.execute(
            select(RetentionRule.scope, RetentionRule.scope_id, RetentionRule.max_age_s)).tuples()]
        places = {cid: Place(sid, rid) for cid, sid, rid in session.execute(
            select(Camera.id, Camera.site_id, Site.region_id).join(Site, Site.id == Camera.site_id)).tuples()}
    decision = decide(segs, now=now, places=places, rules=rules,
                      default_max_age=timedelta(days=settings.default_max_age_days), holds=holds,
                      space=space_of(store, settings))
    if not decision.delete:
        if decision.still_short:
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
    doomed = [i for i in paths if not is_held(by_id[i], late)]
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
