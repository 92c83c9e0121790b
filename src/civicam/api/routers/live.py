"""Live view over HLS, segment bytes for live and playback players, and recorder health."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from civicam.api.deps import Ctx, DbSession, require
from civicam.api.state import shared
from civicam.audit.log import Actor, record
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Camera
from civicam.domain.roles import Perm
from civicam.ingest.service import RecordingHealthSource, recording_settings
from civicam.ingest.sources import SourceSpec
from civicam.live import hls
from civicam.live.answers import Reply
from civicam.live.blurred_live import rendition_size
from civicam.live.edge import live_state
from civicam.live.grants import GRANT_TTL_S
from civicam.live.relay import RelayService
from civicam.live.serving import (
    CACHE_BLURRED,
    CACHE_UNBLURRED,
    blurred_part_response,
    grant_ok,
    live_blur_hub,
    part_response,
    segment_response,
    segment_store,
    serve_segment,
    view_grant,
)
from civicam.live.watchers import LiveWatchers
from civicam.registry.service import credentials, get_camera, stream_url, visible_camera_ids
from civicam.storage.index import discontinuities, latest_detached, latest_segments
from civicam.storage.models import Segment

router = APIRouter(tags=["live"])
Viewer = Annotated[Actor, Depends(require(Perm.video_view))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]
NO_STORE = {"Cache-Control": "no-store"}
POLL_S = 0.05  # blocking reload: how often the file in progress is looked at (a stat)
RELOOK_S = 0.5  # ... and how often the database and folders are, when nothing signals a change
HOLD_TARGETS = 3  # a blocking reload is held up to three target durations (RFC 8216bis §6.2.5.2) ...
HOLD_MAX_S = 8.0  # ... but under hls.js's 10 s time-to-first-byte limit for playlists


Rendition = Literal["full", "wall"]


def as_response(reply: Reply) -> Response:
    """The HTTP response of what the live service layer answered."""
    return Response(reply.content, status_code=reply.status_code, media_type=reply.media_type,
                    headers=reply.headers)


@router.get("/cameras/{camera_id}/live.m3u8")
def live_master(camera_id: int, actor: Viewer, session: DbSession, ctx: Ctx, request: Request,
                unblurred_reason: Annotated[str | None, Query(max_length=500)] = None,
                rendition: Rendition = "full") -> Response:
    """Start watching live: audited once here; the player then polls the media playlist unaudited.

    Faces are blurred unless a user with ``view_unblurred`` states a reason, which is audited.
    ``rendition=wall``: the blurred 640x360 rendition camera-wall tiles play (unblurred is full size only).
    """
    camera = get_camera(session, actor, camera_id)
    if camera.view_only:
        return _relay_master(camera, actor, session, ctx, request, unblurred_reason)
    live_watchers(request).touch(camera_id)
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
    wall = rendition == "wall" and grant is None
    media = "live/media.m3u8" + (f"?grant={grant}" if grant else "?rendition=wall" if wall else "")
    width, height = segs[-1].width, segs[-1].height
    if wall and width and height:
        width, height = rendition_size("wall", width, height)
    bandwidth = hls.bandwidth_of(segs) // (4 if wall else 1)
    body = hls.master_playlist(media, bandwidth=bandwidth, width=width, height=height, blurred=grant is None)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


def _discontinuities(ctx: Context, segs: list[Segment]) -> int:
    """The discontinuity sequence number of a live window's first segment (RFC 8216 §6.2.2)."""
    if not segs:
        return 0
    with ctx.db.session() as session:
        return discontinuities.at(session, segs[0].camera_id, segs[0].seq)


# -- view-only cameras: relayed on demand, never recorded (live/relay.py) ---------------------------------

RELAY_FIRST_SEGMENT_S = 20.0


def live_watchers(request: Request) -> LiveWatchers:
    """Cameras watched live in this process (a gateway streams their segment in progress, edge/stream.py)."""
    return shared(request, "live_watchers", LiveWatchers)


def relays(request: Request, ctx: Context) -> RelayService:
    return shared(request, "relays", lambda: RelayService(
        ctx.settings.data_dir / "relay", recording_settings(ctx), logging.getLogger("civicam.live.relay"), utcnow))


def _relay_master(camera: Camera, actor: Actor, session: Session, ctx: Context, request: Request,
                  unblurred_reason: str | None) -> Response:
    if camera.status != "accepted":
        raise HTTPException(409, "This view-only camera has not been accepted by its probe.")
    now = utcnow()
    grant = view_grant(ctx, actor, camera.id, unblurred_reason, "live", now, now + timedelta(seconds=GRANT_TTL_S))
    if camera.source == "edge":
        # Behind a site gateway: the hub cannot reach the camera; the gateway's long poll learns that it is
        # wanted, pulls it at the site and pushes its segments up (api/routers/edge.py).
        relay = relays(request, ctx).want(camera.id)
    else:
        user, pw = credentials(ctx.secrets, camera)
        settings = recording_settings(ctx)
        spec = SourceSpec(camera.id, stream_url(ctx.secrets, camera), user, pw, settings.rtsp_transport,
                          settings.connect_timeout_s)
        relay = relays(request, ctx).watch(spec)
    deadline = time.monotonic() + RELAY_FIRST_SEGMENT_S
    while not relay.window():  # the first segment of a camera nobody was pulling: a few seconds
        if time.monotonic() > deadline:
            raise HTTPException(503, "The view-only camera sent no video yet (through its site gateway, if it "
                                "is behind one); try again.",
                                headers={"Retry-After": "2"})
        time.sleep(0.1)
        relay.touch()
    record(session, actor, "live.view", "camera", camera.id,
           {"blurred": grant is None, "relay": True, "unblurred_reason": unblurred_reason if grant else None,
            **({"via_gateway": True} if camera.source == "edge" else {})})
    segs = relay.window()
    media = "relay/media.m3u8" + (f"?grant={grant}" if grant else "")
    body = hls.master_playlist(media, bandwidth=hls.bandwidth_of(segs), width=segs[-1].width,
                               height=segs[-1].height, blurred=grant is None)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/relay/media.m3u8")
def relay_media(camera_id: int, actor: Viewer, ctx: Ctx, request: Request, grant: str | None = None) -> Response:
    """The relayed live playlist of a view-only camera (whole segments, blurred unless granted)."""
    _visible(ctx, actor, camera_id)
    now = utcnow()
    grant_ok(ctx, actor, camera_id, grant, "live", now, now)
    relay = relays(request, ctx).get(camera_id)
    if relay is None:
        raise HTTPException(404, "Nobody was watching, so the relay stopped; open the live view again.")
    body = hls.media_playlist(relay.window(), live=True, query=f"grant={grant}" if grant else "",
                              target_s=recording_settings(ctx).segment_target_s, map_each=True)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/relay/segments/{seq}/{part}")
def relay_segment(camera_id: int, seq: int, part: Literal["init.mp4", "media.m4s"], actor: Viewer, ctx: Ctx,
                  request: Request, grant: str | None = None) -> Response:
    _visible(ctx, actor, camera_id)
    now = utcnow()
    unblurred = grant_ok(ctx, actor, camera_id, grant, "live", now, now)
    relay = relays(request, ctx).get(camera_id)
    seg = relay.find(seq) if relay is not None else None
    if relay is None or seg is None:
        raise HTTPException(404, "That relayed segment is gone.")
    rng = request.headers.get("range")
    if unblurred:
        return as_response(segment_response(relay.store.local_path(seg.path), seg.init_bytes, part, rng,
                                            CACHE_UNBLURRED))
    try:
        blurred = relay.cache.get(seg)
    except FileNotFoundError:
        raise HTTPException(404, "That relayed segment is gone.") from None
    return as_response(segment_response(blurred.path, blurred.init_bytes, part, rng, CACHE_BLURRED))


@router.get("/cameras/{camera_id}/relay")
def relay_status(camera_id: int, actor: Viewer, ctx: Ctx, request: Request) -> dict[str, Any]:
    """Whether the hub is pulling this view-only camera now (it stops seconds after the last viewer)."""
    _visible(ctx, actor, camera_id)
    return {"camera_id": camera_id, "relaying": camera_id in relays(request, ctx).active()}


def _visible(ctx: Context, actor: Actor, camera_id: int) -> None:
    with ctx.db.session() as session:
        get_camera(session, actor, camera_id)


@router.get("/cameras/{camera_id}/live/media.m3u8")
async def live_media(camera_id: int, actor: Viewer, ctx: Ctx, request: Request, grant: str | None = None,
                     msn: Annotated[int | None, Query(alias="_HLS_msn", ge=0)] = None,
                     part: Annotated[int | None, Query(alias="_HLS_part", ge=0)] = None,
                     rendition: Rendition = "full") -> Response:
    """The live media playlist, low-latency (LL-HLS) with parts and blocking reloads: unblurred, the
    recorder's own fragments; blurred, those of the camera's blurred live pipeline (live/blurred_live.py).

    A blocking reload (``_HLS_msn``/``_HLS_part``) is answered once that segment or part exists, or after
    a hold; the wait is async and polls file sizes, holding neither a database connection nor a thread.
    """
    await run_in_threadpool(_visible, ctx, actor, camera_id)
    live_watchers(request).touch(camera_id)
    now = utcnow()
    unblurred = grant_ok(ctx, actor, camera_id, grant, "live", now, now)
    settings = recording_settings(ctx)
    if part is not None and msn is None:
        raise HTTPException(400, "_HLS_part needs _HLS_msn.")
    if not unblurred:
        return await _blurred_media(request, ctx, camera_id, rendition, msn, part)
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
    if state.edge is None and not state.transient:
        # No segment in progress in sight: this process is not on the node recording the camera (its spool
        # holds the parts being written, docs/city.md), or the camera is between sessions. Parts of finished
        # segments alone make hls.js ask for the next part and give up waiting for it; whole segments play.
        body = hls.media_playlist(state.segments, live=True, query=f"grant={grant}",
                                  target_s=settings.segment_target_s)
        return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)
    lists = [*state.parts.values(), *([state.edge.parts] if state.edge else [])]
    body = hls.low_latency_playlist(state.segments, state.parts, state.edge, query=f"grant={grant}",
                                    target_s=settings.segment_target_s,
                                    part_target_s=hls.part_target(settings.part_target_s, lists),
                                    discontinuity_sequence=await run_in_threadpool(_discontinuities, ctx,
                                                                                   state.segments))
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


async def _blurred_media(request: Request, ctx: Context, camera_id: int, rendition: str, msn: int | None,
                         part: int | None) -> Response:
    """The blurred live playlist: only parts the pipeline has blurred are listed (fail-closed). A blocking
    reload waits for them; a first fetch waits for the pipeline's first part."""
    settings = recording_settings(ctx)
    if not await run_in_threadpool(latest_detached, ctx.db, camera_id, 1):
        # As the master playlist says: nothing to blur yet (and no pipeline started for it).
        raise HTTPException(404, "Nothing recorded yet for this camera.")
    pipe = live_blur_hub(request.app.state, ctx, segment_store(request.app.state, ctx)).watch(camera_id, rendition)
    snap = pipe.snapshot()
    if msn is not None and snap.files and hls.reload_too_far(snap.last_seq, msn):
        raise HTTPException(400, "That segment is too far in the future.")

    def ready() -> bool:
        if msn is None:
            return bool(snap.files)
        return hls.reload_ready(snap.last_seq, snap.part_counts(), msn, part)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(HOLD_TARGETS * settings.segment_target_s, HOLD_MAX_S)
    while not ready() and snap.error is None and loop.time() < deadline:
        await asyncio.sleep(POLL_S)
        snap = pipe.snapshot()
    if snap.error is not None:
        raise HTTPException(503, "Blurring this live view failed; it restarts when the player retries.")
    if not snap.files:
        raise HTTPException(503, "The blurred live view is starting; try again in a moment.")
    lists = [hls.PartList("", tuple(f.parts)) for f in snap.files]
    # Carried per camera and rendition across the fetches of every viewer (one pipeline serves them all);
    # no await between reading and storing it, so concurrent fetches on the event loop cannot interleave.
    carried: dict[tuple[int, str], hls.Carried] = shared(request, "blurred_discontinuities", dict)
    count = carried[camera_id, rendition] = hls.carry_discontinuities(carried.get((camera_id, rendition)),
                                                                      snap.files)
    body = hls.file_playlist(snap.files, prefix=f"blurred/{rendition}/", target_s=settings.segment_target_s,
                             part_target_s=hls.part_target(settings.part_target_s, lists),
                             discontinuity_sequence=count.count)
    return Response(body, media_type=hls.MIME_PLAYLIST, headers=NO_STORE)


@router.get("/cameras/{camera_id}/live/blurred/{rendition}/{name}")
def live_blurred_part(camera_id: int, rendition: Rendition, name: str, actor: Viewer, ctx: Ctx,
                      request: Request) -> Response:
    """Bytes of a blurred live file, by HTTP Range: the parts of the blurred LL-HLS playlist."""
    _visible(ctx, actor, camera_id)
    hub = live_blur_hub(request.app.state, ctx, segment_store(request.app.state, ctx))
    return as_response(blurred_part_response(hub, camera_id, rendition, name, request.headers.get("range")))


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
        if isinstance(svc, RecordingHealthSource):  # this process's recorders, or the cluster's
            health = svc.recording_health()
            with ctx.db.session() as session:
                visible = visible_camera_ids(session, actor, health)
            return {"running": True, "cameras": [
                {**asdict(h), "since": h.since.isoformat(),
                 "last_segment_end": h.last_segment_end.isoformat() if h.last_segment_end else None}
                for cid, h in sorted(health.items()) if cid in visible]}
    return {"running": False, "cameras": []}
