"""Recordings: list segments and gaps, VOD playback playlists, audited exports and evidence holds."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from civicam.api.deps import Ctx, DbSession, require
from civicam.api.state import shared
from civicam.audit.log import Actor, record
from civicam.context import Context
from civicam.domain.roles import Perm
from civicam.ingest.service import recording_settings
from civicam.live import hls
from civicam.live.export_jobs import ExportWorkers
from civicam.live.playback import (
    MAX_PLAYBACK_S,
    PlaybackError,
    begin_export,
    check_interval,
    create_hold,
    export_json,
    hold_json,
    may_read_export,
    recordings,
    release_hold,
)
from civicam.live.serving import grant_ok, segment_store, view_grant
from civicam.registry.service import NotFound, get_camera
from civicam.storage.index import active_holds, segments_between
from civicam.storage.models import Export, Hold

router = APIRouter(tags=["recordings"])
Viewer = Annotated[Actor, Depends(require(Perm.video_view))]
Exporter = Annotated[Actor, Depends(require(Perm.video_export))]
Holder = Annotated[Actor, Depends(require(Perm.hold_write))]
From = Annotated[datetime, Query(alias="from", description="Start, ISO 8601 (UTC if no offset).")]
To = Annotated[datetime, Query(alias="to", description="End, ISO 8601 (UTC if no offset).")]


def _bad(exc: PlaybackError) -> HTTPException:
    return HTTPException(400, str(exc))


class ExportCreate(BaseModel):
    start: datetime = Field(alias="from", description="Start of the clip (the clip starts at the keyframe before).")
    end: datetime = Field(alias="to", description="End of the clip.")
    reason: str = Field(min_length=3, max_length=2000, description="Why the clip is exported; audited.")
    unblurred_reason: str | None = Field(None, max_length=2000,
                                         description="Reason to export unblurred (needs view_unblurred).")


class HoldCreate(BaseModel):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    reason: str = Field(min_length=3, max_length=2000, description="Why this interval must be kept; audited.")


@router.get("/cameras/{camera_id}/recordings")
def list_recordings(camera_id: int, actor: Viewer, session: DbSession,
                    start: Annotated[datetime | None, Query(alias="from")] = None,
                    end: Annotated[datetime | None, Query(alias="to")] = None) -> dict[str, Any]:
    get_camera(session, actor, camera_id)
    return recordings(session, camera_id, start, end)


@router.get("/cameras/{camera_id}/playback.m3u8")
def playback_master(camera_id: int, actor: Viewer, session: DbSession, ctx: Ctx, start: From, end: To,
                    unblurred_reason: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """The view start of a recorded interval (audited); the player then follows the media playlist."""
    get_camera(session, actor, camera_id)
    try:
        start, end = check_interval(start, end, MAX_PLAYBACK_S)
    except PlaybackError as exc:
        raise _bad(exc) from None
    segs = segments_between(session, camera_id, start, end)
    if not segs:
        raise HTTPException(404, "No recording in that interval.")
    grant = view_grant(ctx, actor, camera_id, unblurred_reason, "playback", start, end)
    record(session, actor, "playback.view", "camera", camera_id,
           {"from": start.isoformat(), "to": end.isoformat(), "blurred": grant is None,
            "unblurred_reason": unblurred_reason if grant else None})
    q = f"from={start.isoformat()}&to={end.isoformat()}".replace("+", "%2B") + (f"&grant={grant}" if grant else "")
    body = hls.master_playlist(f"playback/media.m3u8?{q}", bandwidth=hls.bandwidth_of(segs),
                               width=segs[-1].width, height=segs[-1].height, blurred=grant is None)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers={"Cache-Control": "no-store"})


@router.get("/cameras/{camera_id}/playback/media.m3u8")
def playback_media(camera_id: int, actor: Viewer, session: DbSession, ctx: Ctx, start: From, end: To,
                   grant: str | None = None) -> Response:
    get_camera(session, actor, camera_id)
    try:
        start, end = check_interval(start, end, MAX_PLAYBACK_S)
    except PlaybackError as exc:
        raise _bad(exc) from None
    # The grant covers the interval its view was opened for; a wider one needs its own reason.
    unblurred = grant_ok(ctx, actor, camera_id, grant, "playback", start, end, whole=True)
    segs = segments_between(session, camera_id, start, end)
    body = hls.media_playlist(segs, live=False, target_s=recording_settings(ctx).segment_target_s,
                              query=f"grant={grant}" if unblurred else "", map_each=not unblurred)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers={"Cache-Control": "no-store"})


@router.post("/cameras/{camera_id}/exports", status_code=202)
def create_export(camera_id: int, body: ExportCreate, actor: Exporter, session: DbSession, ctx: Ctx,
                  request: Request) -> dict[str, Any]:
    """Export one MP4 of the interval, audited with who and why, written in the background.

    The answer comes at once with ``status: running``; poll ``status_url`` until ``done`` (then fetch
    ``download``) or ``failed`` (``error`` says why): a blurred clip can take longer than any request.
    """
    get_camera(session, actor, camera_id)
    try:
        job = begin_export(ctx.db, ctx.settings.data_dir / "exports", actor, camera_id, body.start, body.end,
                           body.reason, body.unblurred_reason)
    except PlaybackError as exc:
        raise _bad(exc) from None
    _export_workers(request, ctx).submit(job)
    return {**job.export, "status_url": f"/api/exports/{job.id}", "download": f"/api/exports/{job.id}/download"}


def _export_workers(request: Request, ctx: Context) -> ExportWorkers:
    # Made by the first export request; closed by the app's lifespan.
    return shared(request, "export_workers", lambda: ExportWorkers(ctx.db, segment_store(request.app.state, ctx),
                                                                   logging.getLogger("civicam.exports")))


def _export(session: DbSession, actor: Actor, export_id: int) -> Export:
    """The export if the actor may read it (``may_read_export``); else 404, as if it did not exist."""
    exp = session.get(Export, export_id)
    if exp is None or not may_read_export(actor, exp.requested_by, exp.unblurred):
        raise NotFound(f"Export {export_id} not found.")
    try:
        get_camera(session, actor, exp.camera_id)
    except NotFound:
        raise NotFound(f"Export {export_id} not found.") from None
    return exp


@router.get("/exports/{export_id}")
def get_export(export_id: int, actor: Exporter, session: DbSession) -> dict[str, Any]:
    return export_json(_export(session, actor, export_id))


@router.get("/exports/{export_id}/download")
def download_export(export_id: int, actor: Exporter, session: DbSession) -> FileResponse:
    exp = _export(session, actor, export_id)
    if exp.status != "done" or not exp.path:
        raise HTTPException(409, f"Export {export_id} is {exp.status}.")
    record(session, actor, "recording.export.download", "camera", exp.camera_id, {"export_id": exp.id})
    return FileResponse(exp.path, media_type="video/mp4", filename=f"civicam-export-{exp.id}.mp4")


@router.get("/cameras/{camera_id}/holds")
def list_holds(camera_id: int, actor: Viewer, session: DbSession) -> list[dict[str, Any]]:
    get_camera(session, actor, camera_id)
    return [hold_json(h) for h in active_holds(session, camera_id)]


@router.post("/cameras/{camera_id}/holds", status_code=201)
def add_hold(camera_id: int, body: HoldCreate, actor: Holder, session: DbSession) -> dict[str, Any]:
    get_camera(session, actor, camera_id)
    try:
        return hold_json(create_hold(session, actor, camera_id, body.start, body.end, body.reason))
    except PlaybackError as exc:
        raise _bad(exc) from None


@router.delete("/holds/{hold_id}")
def delete_hold(hold_id: int, actor: Holder, session: DbSession) -> dict[str, Any]:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise NotFound(f"Hold {hold_id} not found.")
    get_camera(session, actor, hold.camera_id)
    try:
        return hold_json(release_hold(session, actor, hold))
    except PlaybackError as exc:
        raise _bad(exc) from None
