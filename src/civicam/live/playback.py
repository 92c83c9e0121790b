"""Playback operations shared by the API and the CLI: listing, evidence holds and audited exports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from civicam.audit.log import Actor, record
from civicam.db.base import utcnow
from civicam.db.session import Database
from civicam.live.export import ExportResult, NothingToExport, export_clip
from civicam.live.transform import transform_for, wants_unblurred
from civicam.storage.backend import SegmentStore
from civicam.storage.index import gaps_between, segments_between
from civicam.storage.models import Export, Gap, Hold, Segment

MAX_EXPORT_S = 6 * 3600


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


def run_export(db: Database, store: SegmentStore, export_dir: Path, actor: Actor, camera_id: int,
               start: datetime, end: datetime, reason: str, unblurred_reason: str | None = None,
               dest: Path | None = None) -> ExportOutcome:
    """Hold the interval, audit who and why, remux the clip, record the outcome, release the hold."""
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
        exp_id, hold_id = exp.id, hold.id
        segs: Sequence[Segment] = segments_between(session, camera_id, start, end)
    if dest is None:
        export_dir.mkdir(parents=True, exist_ok=True)
        dest = export_dir / f"export-{exp_id:06d}-cam{camera_id}.mp4"
    result: ExportResult | None = None
    error: str | None = None
    try:
        result = export_clip(store, segs, start, end, str(dest), transform_for(actor, unblurred_reason))
    except NothingToExport as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001  recorded on the export row and reported, never a crash
        error = f"{type(exc).__name__}: {exc}"
    with db.session() as session:
        row = session.get(Export, exp_id)
        assert row is not None
        if result is not None:
            row.status, row.path, row.bytes, row.first_frame = "done", str(dest), result.bytes, result.first_frame
        else:
            row.status, row.error = "failed", error
        held = session.get(Hold, hold_id)
        if held is not None:
            held.released_at = utcnow()
        return ExportOutcome(export_json(row), dest if result is not None else None)


def hold_by_id(session: Session, hold_id: int) -> Hold | None:
    return session.get(Hold, hold_id)
