"""Live view over HLS, segment bytes for live and playback players, and recorder health."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import select

from civicam.api.deps import Ctx, DbSession, require
from civicam.audit.log import Actor, record
from civicam.db.models import Camera
from civicam.domain.roles import Perm, Role
from civicam.ingest.service import RecordingService, recording_settings, store_for
from civicam.live import hls
from civicam.live.transform import transform_for
from civicam.registry.service import get_camera
from civicam.storage.index import latest_segments
from civicam.storage.models import Segment

router = APIRouter(tags=["live"])
Viewer = Annotated[Actor, Depends(require(Perm.video_view))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/cameras/{camera_id}/live.m3u8")
def live_master(camera_id: int, actor: Viewer, session: DbSession, ctx: Ctx) -> Response:
    """Start watching live: audited once here; the player then polls the media playlist unaudited."""
    get_camera(session, actor, camera_id)
    segs = latest_segments(session, camera_id, recording_settings(ctx).live_segments)
    if not segs:
        raise HTTPException(404, "Nothing recorded yet for this camera.")
    blurred = transform_for(actor) is not None
    record(session, actor, "live.view", "camera", camera_id, {"blurred": blurred})
    body = hls.master_playlist("live/media.m3u8", bandwidth=hls.bandwidth_of(segs), width=segs[-1].width,
                               height=segs[-1].height, blurred=blurred)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/live/media.m3u8")
def live_media(camera_id: int, actor: Viewer, session: DbSession, ctx: Ctx) -> Response:
    get_camera(session, actor, camera_id)
    settings = recording_settings(ctx)
    segs = latest_segments(session, camera_id, settings.live_segments)
    body = hls.media_playlist(segs, live=True, target_s=settings.segment_target_s)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/{mode}/segments/{segment_id}/{part}")
def segment_bytes(camera_id: int, mode: Literal["live", "playback"], segment_id: int,
                  part: Literal["init.mp4", "media.m4s"], actor: Viewer, session: DbSession, ctx: Ctx) -> Response:
    """The init section (ftyp+moov) or the media part (moof+mdat...) of one recorded segment."""
    get_camera(session, actor, camera_id)
    seg = session.get(Segment, segment_id)
    if seg is None or seg.camera_id != camera_id:
        raise HTTPException(404, "No such segment.")
    if transform_for(actor) is not None:
        # The serving seam: transformed (blurred) segments would be produced here; none exist yet.
        raise HTTPException(501, "Transformed video is not available yet.")
    try:
        with store_for(ctx).open(seg.path) as fh:
            if part == "init.mp4":
                data = fh.read(seg.init_bytes)
            else:
                fh.seek(seg.init_bytes)
                data = fh.read()
    except FileNotFoundError:
        raise HTTPException(404, "The segment was deleted by retention.") from None
    media = "video/mp4" if part == "init.mp4" else "video/iso.segment"
    # Segments never change once published, so players and proxies may cache them privately.
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


@router.get("/recording/health")
def recording_health(actor: Reader, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Per camera: online/reconnecting/offline since when, counters, last error (redacted), disk paused."""
    for svc in getattr(request.app.state, "services", []):
        if isinstance(svc, RecordingService):
            health = svc.health()
            visible = set(health)
            if actor.role == Role.site_rep:
                with ctx.db.session() as session:
                    visible = set(session.execute(select(Camera.id).where(
                        Camera.id.in_(visible), Camera.site_id == actor.site_id)).scalars())
            return {"running": True, "cameras": [
                {**asdict(h), "since": h.since.isoformat(),
                 "last_segment_end": h.last_segment_end.isoformat() if h.last_segment_end else None}
                for cid, h in sorted(health.items()) if cid in visible]}
    return {"running": False, "cameras": []}
