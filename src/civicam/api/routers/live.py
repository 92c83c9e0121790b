"""Live view over HLS, segment bytes for live and playback players, and recorder health."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from civicam.api.deps import Ctx, DbSession, require
from civicam.audit.log import Actor, record
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.domain.roles import Perm
from civicam.ingest.service import RecordingService, recording_settings
from civicam.live import hls
from civicam.live.answers import Reply
from civicam.live.edge import live_state
from civicam.live.grants import GRANT_TTL_S
from civicam.live.serving import (
    blurred_live_window,
    grant_ok,
    part_response,
    segment_store,
    serve_segment,
    view_grant,
)
from civicam.registry.service import get_camera, visible_camera_ids
from civicam.storage.index import latest_segments
from civicam.storage.models import Segment

router = APIRouter(tags=["live"])
Viewer = Annotated[Actor, Depends(require(Perm.video_view))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]
NO_STORE = {"Cache-Control": "no-store"}
POLL_S = 0.05  # blocking reload: how often the file in progress is looked at (a stat)
RELOOK_S = 0.5  # ... and how often the database and folders are, when nothing signals a change
HOLD_TARGETS = 3  # a blocking reload is held up to three target durations (RFC 8216bis §6.2.5.2) ...
HOLD_MAX_S = 8.0  # ... but under hls.js's 10 s time-to-first-byte limit for playlists


def as_response(reply: Reply) -> Response:
    """The HTTP response of what the live service layer answered."""
    return Response(reply.content, status_code=reply.status_code, media_type=reply.media_type,
                    headers=reply.headers)


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
    # An unblurred grant covers this live view only: the live window as it is now, and what is recorded
    # until the grant expires; the audit entry names that interval.
    # (Index times follow the camera's clock: a camera ahead of the hub must not shut its own view out.)
    now = utcnow()
    opened, until = min(segs[0].start, now), now + timedelta(seconds=GRANT_TTL_S)
    grant = view_grant(ctx, actor, camera_id, unblurred_reason, "live", opened, until)
    record(session, actor, "live.view", "camera", camera_id,
           {"blurred": grant is None, "unblurred_reason": unblurred_reason if grant else None,
            **({"from": opened.isoformat(), "to": until.isoformat()} if grant else {})})
    media = "live/media.m3u8" + (f"?grant={grant}" if grant else "")
    body = hls.master_playlist(media, bandwidth=hls.bandwidth_of(segs), width=segs[-1].width,
                               height=segs[-1].height, blurred=grant is None)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


def _visible(ctx: Context, actor: Actor, camera_id: int) -> None:
    with ctx.db.session() as session:
        get_camera(session, actor, camera_id)


@router.get("/cameras/{camera_id}/live/media.m3u8")
async def live_media(camera_id: int, actor: Viewer, ctx: Ctx, request: Request, grant: str | None = None,
                     msn: Annotated[int | None, Query(alias="_HLS_msn", ge=0)] = None,
                     part: Annotated[int | None, Query(alias="_HLS_part", ge=0)] = None) -> Response:
    """The live media playlist; unblurred, it is low-latency (LL-HLS) with parts and blocking reloads.

    A blocking reload (``_HLS_msn``/``_HLS_part``) is answered once that segment or part exists, or after
    a hold; the wait is async and polls file sizes, holding neither a database connection nor a thread.
    """
    await run_in_threadpool(_visible, ctx, actor, camera_id)
    now = utcnow()
    unblurred = grant_ok(ctx, actor, camera_id, grant, "live", now, now)
    settings = recording_settings(ctx)
    if not unblurred:
        # Blurred: whole published segments only (live/edge.py says why no parts), blurred ahead of the
        # player's requests while the view is watched (live/blur_ahead.py).
        segs = await run_in_threadpool(blurred_live_window, request.app.state, ctx,
                                       segment_store(request.app.state, ctx), camera_id)
        body = hls.media_playlist(segs, live=True, target_s=settings.segment_target_s, map_each=True)
        return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)
    if part is not None and msn is None:
        raise HTTPException(400, "_HLS_part needs _HLS_msn.")
    store = segment_store(request.app.state, ctx)
    state = await run_in_threadpool(live_state, ctx, store, camera_id, settings.live_segments)
    if msn is not None:
        if hls.reload_too_far(state.last_seq, msn):
            raise HTTPException(400, "That segment is too far in the future.")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(HOLD_TARGETS * settings.segment_target_s, HOLD_MAX_S)
        looked = loop.time()
        while not hls.reload_ready(state.last_seq, state.part_counts(), msn, part) and loop.time() < deadline:
            await asyncio.sleep(POLL_S)
            # Look again (database and files) when the file in progress grew or was published; otherwise
            # now and then, for a new connection's segment or a camera that came back.
            if state.changed() or loop.time() - looked >= (POLL_S if state.transient else RELOOK_S):
                state = await run_in_threadpool(live_state, ctx, store, camera_id, settings.live_segments)
                looked = loop.time()
    lists = [*state.parts.values(), *([state.edge.parts] if state.edge else [])]
    body = hls.low_latency_playlist(state.segments, state.parts, state.edge, query=f"grant={grant}",
                                    target_s=settings.segment_target_s,
                                    part_target_s=hls.part_target(settings.part_target_s, lists))
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/live/parts/{name}")
def live_part(camera_id: int, name: str, actor: Viewer, ctx: Ctx, request: Request,
              grant: str | None = None) -> Response:
    """Bytes of a segment file, in progress or published, by HTTP Range: the parts of the LL-HLS playlist.

    Unblurred only (a grant is required): parts are never blurred.
    """
    _visible(ctx, actor, camera_id)
    now = utcnow()
    if not grant_ok(ctx, actor, camera_id, grant, "live", now, now):
        raise HTTPException(403, "Parts are served for the unblurred live view only.")
    return as_response(part_response(segment_store(request.app.state, ctx), camera_id, name,
                                     request.headers.get("range")))


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
    state = request.app.state
    return as_response(serve_segment(state, ctx, actor, segment_store(state, ctx), seg, part, grant,
                                     request.headers.get("range"), mode))


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
