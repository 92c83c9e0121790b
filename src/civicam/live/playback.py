"""Playback operations shared by the API and the CLI: listing, evidence holds and audited exports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from civicam.audit.log import Actor, record
from civicam.db.base import utcnow
from civicam.db.session import Database
from civicam.domain.roles import Role
from civicam.live.export import ExportResult, NothingToExport, export_clip
from civicam.live.transform import FrameTransform, transform_for, wants_unblurred
from civicam.storage.backend import SegmentStore
from civicam.storage.index import gaps_between, segments_between
from civicam.storage.models import Export, Gap, Hold, Segment

MAX_EXPORT_S = 6 * 3600
# A playback playlist lists every segment of its interval: bounded, so no viewer can ask for a year of them.
MAX_PLAYBACK_S = 24 * 3600


class PlaybackError(ValueError):
    """Bad input for playback, export or holds; the message says what to fix."""


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive time is taken as UTC (the API documents times as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def check_interval(start: datetime, end: datetime, max_s: float | None = None) -> tuple[datetime, datetime]:
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise PlaybackError("'to' must be after 'from'.")
    if max_s is not None and (end - start).total_seconds() > max_s:
        raise PlaybackError(f"The interval may be at most {max_s / 3600:g} hours.")
    return start, end


def segment_json(s: Segment) -> dict[str, Any]:
    return {"id": s.id, "seq": s.seq, "start": s.start.isoformat(), "end": s.end.isoformat(),
            "duration_s": round((s.end - s.start).total_seconds(), 3), "bytes": s.bytes,
            "keyframes": s.keyframes, "frames": s.frames, "codec": s.codec, "width": s.width, "height": s.height}


def gap_json(g: Gap) -> dict[str, Any]:
    return {"id": g.id, "start": g.start.isoformat(), "end": g.end.isoformat() if g.end else None,
            "reason": g.reason, "detail": g.detail}


def hold_json(h: Hold) -> dict[str, Any]:
    return {"id": h.id, "camera_id": h.camera_id, "start": h.start.isoformat(), "end": h.end.isoformat(),
            "kind": h.kind, "reason": h.reason, "created_by": h.created_by, "created_at": h.created_at.isoformat(),
            "released_at": h.released_at.isoformat() if h.released_at else None}


def export_json(e: Export) -> dict[str, Any]:
    return {"id": e.id, "camera_id": e.camera_id, "start": e.start.isoformat(), "end": e.end.isoformat(),
            "reason": e.reason, "requested_by": e.requested_by, "status": e.status, "bytes": e.bytes,
            "first_frame": e.first_frame.isoformat() if e.first_frame else None, "error": e.error,
            "unblurred": e.unblurred}


def may_read_export(actor: Actor, requested_by: str, unblurred: bool) -> bool:
    """Whether ``actor`` may read an export's status and download it: its creator and admins, and for an
    unblurred export only if the actor holds ``view_unblurred`` now (export ids are sequential: whoever may
    not is told the export does not exist)."""
    if unblurred and not actor.view_unblurred:
        return False
    return actor.role == Role.admin or actor.name == requested_by


def recordings(session: Session, camera_id: int, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """Segments and gaps of a camera in an interval, as JSON-ready dicts."""
    start = as_utc(start) if start else None
    end = as_utc(end) if end else None
    segs = segments_between(session, camera_id, start, end, limit=20000)
    return {"camera_id": camera_id, "segments": [segment_json(s) for s in segs],
            "gaps": [gap_json(g) for g in gaps_between(session, camera_id, start, end)]}


def create_hold(session: Session, actor: Actor, camera_id: int, start: datetime, end: datetime, reason: str,
                kind: str = "evidence") -> Hold:
    """An evidence hold: retention never deletes the interval until it is released."""
    start, end = check_interval(start, end)
    if not reason.strip():
        raise PlaybackError("A hold needs a reason.")
    hold = Hold(camera_id=camera_id, start=start, end=end, kind=kind, reason=reason.strip(), created_by=actor.name)
    session.add(hold)
    session.flush()
    if kind == "evidence":
        record(session, actor, "hold.create", "camera", camera_id, hold_json(hold))
    return hold


def release_hold(session: Session, actor: Actor, hold: Hold, why: str = "") -> Hold:
    if hold.released_at is not None:
        raise PlaybackError(f"Hold {hold.id} was already released.")
    hold.released_at = utcnow()
    record(session, actor, "hold.release", "camera", hold.camera_id, {"hold_id": hold.id, "why": why})
    return hold


@dataclass(frozen=True)
class ExportOutcome:
    export: dict[str, Any]
    path: Path | None


@dataclass(frozen=True)
class ExportJob:
    """An export on record (row, audit entry, hold) whose clip is still to be written."""

    export: dict[str, Any]
    hold_id: int
    start: datetime
    end: datetime
    segments: Sequence[Segment]
    dest: Path
    transform: FrameTransform | None

    @property
    def id(self) -> int:
        return int(self.export["id"])


def begin_export(db: Database, export_dir: Path, actor: Actor, camera_id: int, start: datetime, end: datetime,
                 reason: str, unblurred_reason: str | None = None, dest: Path | None = None) -> ExportJob:
    """Check the request, hold the interval and audit who and why; the clip is written by ``finish_export``."""
    start, end = check_interval(start, end, MAX_EXPORT_S)
    if not reason.strip():
        raise PlaybackError("An export needs a reason.")
    unblurred = wants_unblurred(actor, unblurred_reason)
    # The hold and the audit entry commit before any file is read, so retention cannot pull segments
    # from under the export, and the export is on record even if it then fails.
    with db.session() as session:
        hold = create_hold(session, actor, camera_id, start, end, f"export: {reason}", kind="export")
        exp = Export(camera_id=camera_id, start=start, end=end, reason=reason.strip(), requested_by=actor.name,
                     unblurred=unblurred)
        session.add(exp)
        session.flush()
        record(session, actor, "recording.export", "camera", camera_id,
               {"export_id": exp.id, "from": start.isoformat(), "to": end.isoformat(), "reason": reason.strip(),
                "unblurred": unblurred, "unblurred_reason": unblurred_reason if unblurred else None})
        segs: Sequence[Segment] = segments_between(session, camera_id, start, end)
        row = export_json(exp)
        hold_id = hold.id
    if dest is None:
        export_dir.mkdir(parents=True, exist_ok=True)
        dest = export_dir / f"export-{row['id']:06d}-cam{camera_id}.mp4"
    return ExportJob(row, hold_id, start, end, segs, dest, transform_for(actor, unblurred_reason))


def finish_export(db: Database, store: SegmentStore, job: ExportJob) -> ExportOutcome:
    """Write the clip (remuxed, or re-encoded with faces blurred), record the outcome, release the hold."""
    result: ExportResult | None = None
    error: str | None = None
    try:
        result = export_clip(store, job.segments, job.start, job.end, str(job.dest), job.transform)
    except NothingToExport as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001  recorded on the export row and reported, never a crash
        error = f"{type(exc).__name__}: {exc}"
    with db.session() as session:
        row = session.get(Export, job.id)
        held = session.get(Hold, job.hold_id)
        if held is not None:
            held.released_at = utcnow()
        if row is None:  # the camera was deleted meanwhile (its exports cascade)
            return ExportOutcome({**job.export, "status": "failed", "error": "the camera was deleted"}, None)
        if result is not None:
            row.status, row.path, row.bytes, row.first_frame = "done", str(job.dest), result.bytes, result.first_frame
        else:
            row.status, row.error = "failed", error
        return ExportOutcome(export_json(row), job.dest if result is not None else None)


def run_export(db: Database, store: SegmentStore, export_dir: Path, actor: Actor, camera_id: int,
               start: datetime, end: datetime, reason: str, unblurred_reason: str | None = None,
               dest: Path | None = None) -> ExportOutcome:
    """Hold the interval, audit who and why, write the clip, record the outcome, release the hold."""
    job = begin_export(db, export_dir, actor, camera_id, start, end, reason, unblurred_reason, dest)
    return finish_export(db, store, job)


def abandon_running_exports(db: Database) -> int:
    """Exports a stopped hub left running: marked failed and their holds released; how many there were.

    Called when a hub starts, before it takes new exports: none of its own can be running yet.
    """
    with db.session() as session:
        rows = session.execute(select(Export).where(Export.status == "running")).scalars().all()
        for row in rows:
            row.status, row.error = "failed", "interrupted: the hub stopped during the export; export again"
            for hold in session.execute(select(Hold).where(
                    Hold.camera_id == row.camera_id, Hold.kind == "export", Hold.released_at.is_(None),
                    Hold.start == row.start, Hold.end == row.end)).scalars():
                hold.released_at = utcnow()
        return len(rows)


def hold_by_id(session: Session, hold_id: int) -> Hold | None:
    return session.get(Hold, hold_id)
