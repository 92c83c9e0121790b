"""Start-up repair: torn partial segments are remuxed or discarded, and the index is made to agree with the disk."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from sqlalchemy import delete, select

from civicam.db.models import Camera
from civicam.db.session import Database
from civicam.domain.segments import BadSegmentPath, SegmentDone, parse_segment_path, published_path
from civicam.storage.backend import SegmentStore
from civicam.storage.index import add_segment
from civicam.storage.media import SegmentProbe, probe, repair
from civicam.storage.models import Segment


@dataclass
class ReconcileReport:
    """What start-up repair did, for the log and the tests."""

    repaired: int = 0
    discarded: int = 0
    indexed: int = 0
    removed_files: int = 0
    removed_rows: int = 0
    aborted_uploads: int = 0
    settling: int = 0  # objects left to the recorder that just wrote them
    edge_partials: int = 0  # live names of gateway uploads in progress, dropped (the uploads keep their bytes)


def _done(camera_id: int, rel: str, size: int, info: SegmentProbe) -> SegmentDone:
    from datetime import timedelta

    start = parse_segment_path(rel).start
    return SegmentDone(camera_id, rel, start, start + timedelta(seconds=info.duration_s), size, info.frames,
                       info.keyframes, info.init_bytes, info.codec, info.width, info.height, "recovered")


def reconcile(db: Database, store: SegmentStore, logger: logging.Logger) -> ReconcileReport:
    """Run once before recording starts; no recorder may be writing to ``store`` meanwhile."""
    report = ReconcileReport()
    abort = getattr(store, "abort_stale_uploads", None)
    if abort is not None:
        # An object store: multipart uploads a killed recorder left are invisible but hold their parts.
        # Only old ones: in a city other recorders share the bucket and may be uploading right now.
        report.aborted_uploads = abort()
    files = {f.path: f.bytes for f in store.list()}
    settling = getattr(store, "settling", None)
    with db.session() as session:
        known_cameras = set(session.execute(select(Camera.id)).scalars())
        edge_cameras = set(session.execute(select(Camera.id).where(Camera.source == "edge")).scalars())
        rows = dict(session.execute(select(Segment.path, Segment.id)).tuples().all())
    new_rows: list[SegmentDone] = []
    for rel in sorted(files):
        try:
            key = parse_segment_path(rel)
        except BadSegmentPath:
            continue  # not ours; leave it alone
        if key.camera_id not in known_cameras:
            store.delete(rel)
            report.removed_files += 1
            continue
        if key.partial and key.camera_id in edge_cameras:
            # A gateway's segment streamed as it was recorded: the partial name is only the live view's
            # window on its upload (ingest/uploads.py), whose own file keeps the bytes; publishing it would
            # index half a segment the gateway then cannot deliver whole. The upload resumes from its file.
            store.delete(rel)
            report.edge_partials += 1
            continue
        if key.partial:
            final = published_path(rel)
            if final in files:
                store.delete(rel)
                report.discarded += 1
                continue
            # Repair into a second partial name, then publish atomically, so a crash during repair is harmless.
            tmp_rel = rel.replace("Z.mp4.partial", "Z.fix.mp4.partial")
            info = repair(store.local_path(rel), store.spool(tmp_rel)) if files[rel] > 0 else None
            store.delete(rel)
            if info is None or info.frames == 0:
                store.delete(tmp_rel)
                report.discarded += 1
                logger.info("discarded an unrecoverable partial segment %s", rel)
                continue
            size = store.publish(tmp_rel, final)
            new_rows.append(_done(key.camera_id, final, size, info))
            report.repaired += 1
            logger.info("repaired partial segment %s (%d frames)", final, info.frames)
        elif rel not in rows:
            if settling is not None and settling(rel):
                report.settling += 1  # just uploaded by another recorder of the bucket, which indexes it
                continue
            try:
                info = probe(store.local_path(rel))
            except Exception:  # noqa: BLE001  any unreadable file is removed rather than served
                store.delete(rel)
                report.removed_files += 1
                continue
            new_rows.append(_done(key.camera_id, rel, files[rel], info))
            report.indexed += 1
    # A crash during an earlier repair leaves a ".fix" partial that parse_segment_path rejects; sweep it.
    for rel in list(files):
        if rel.endswith(".fix.mp4.partial") and os.path.exists(store.local_path(rel)):
            store.delete(rel)
    published = {r.path for r in new_rows} | {p for p in files if not p.endswith(".partial")}
    missing = [seg_id for path, seg_id in rows.items() if path not in published]
    with db.session() as session:
        for done in new_rows:
            add_segment(session, done)
        for i in range(0, len(missing), 500):
            session.execute(delete(Segment).where(Segment.id.in_(missing[i:i + 500])))
    report.removed_rows = len(missing)
    logger.info("recording reconcile: %s", report)
    return report
