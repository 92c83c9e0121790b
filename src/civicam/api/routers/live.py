"""Live view over HLS, segment bytes for live and playback players, and recorder health."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from civicam.api.deps import Ctx, DbSession, require
from civicam.audit.log import Actor, record
from civicam.domain.roles import Perm
from civicam.ingest.service import RecordingService, recording_settings, store_for
from civicam.live import hls
from civicam.live.serving import grant_ok, serve_segment, view_grant
from civicam.registry.service import get_camera, visible_camera_ids
from civicam.storage.index import latest_segments
from civicam.storage.models import Segment

router = APIRouter(tags=["live"])
Viewer = Annotated[Actor, Depends(require(Perm.video_view))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/cameras/{camera_id}/live.m3u8")
def live_master(camera_id: int, actor: Viewer, session: DbSession, ctx: Ctx,
                unblurred_reason: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """Start watching live: audited once here; the player then polls the media playlist unaudited.

    Faces are blurred unless a user with ``view_unblurred`` states a reason, which is audited.
    """
    get_camera(session, actor, camera_id)
    segs = latest_segments(session, camera_id, recording_settings(ctx).live_segments)
    if not segs:
        raise HTTPException(404, "Nothing recorded yet for this camera.")
    grant = view_grant(ctx, actor, camera_id, unblurred_reason)
    record(session, actor, "live.view", "camera", camera_id,
           {"blurred": grant is None, "unblurred_reason": unblurred_reason if grant else None})
    media = "live/media.m3u8" + (f"?grant={grant}" if grant else "")
    body = hls.master_playlist(media, bandwidth=hls.bandwidth_of(segs), width=segs[-1].width,
                               height=segs[-1].height, blurred=grant is None)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/live/media.m3u8")
def live_media(camera_id: int, actor: Viewer, session: DbSession, ctx: Ctx, grant: str | None = None) -> Response:
    get_camera(session, actor, camera_id)
    unblurred = grant_ok(ctx, actor, camera_id, grant)
    settings = recording_settings(ctx)
    segs = latest_segments(session, camera_id, settings.live_segments)
    body = hls.media_playlist(segs, live=True, target_s=settings.segment_target_s,
                              query=f"grant={grant}" if unblurred else "", map_each=not unblurred)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/{mode}/segments/{segment_id}/{part}")
def segment_bytes(camera_id: int, mode: Literal["live", "playback"], segment_id: int,
                  part: Literal["init.mp4", "media.m4s"], actor: Viewer, ctx: Ctx, request: Request,
                  grant: str | None = None) -> Response:
    """The init section (ftyp+moov) or the media part (moof+mdat...) of one segment, blurred by default."""
    # A short session of its own: blurring can take seconds and must not hold a database connection.
    with ctx.db.session() as session:
        get_camera(session, actor, camera_id)
        seg = session.get(Segment, segment_id)
        if seg is None or seg.camera_id != camera_id:
            raise HTTPException(404, "No such segment.")
        session.expunge(seg)
    return serve_segment(request, ctx, actor, store_for(ctx), seg, part, grant)


@router.get("/recording/health")
def recording_health(actor: Reader, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Per camera: online/reconnecting/offline since when, counters, last error (redacted), disk paused."""
    for svc in getattr(request.app.state, "services", []):
        if isinstance(svc, RecordingService):
            health = svc.health()
            with ctx.db.session() as session:
                visible = visible_camera_ids(session, actor, health)
            return {"running": True, "cameras": [
                {**asdict(h), "since": h.since.isoformat(),
                 "last_segment_end": h.last_segment_end.isoformat() if h.last_segment_end else None}
                for cid, h in sorted(health.items()) if cid in visible]}
    return {"running": False, "cameras": []}
