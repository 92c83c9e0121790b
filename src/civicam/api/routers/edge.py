"""Site gateways: enrolment tokens (admins), and what gateways send (cameras, resumable segment uploads, gaps,
health), each request authenticated by the site's token and confined to that site's cameras.

Uploads speak tus 1.0.0 (core, creation, creation-with-upload, creation-defer-length, expiration and
termination; https://tus.io/protocols/resumable-upload): POST creates (or, for the same camera, start and
SHA-256, finds) the upload, HEAD tells the offset the hub has, PATCH appends at that offset, DELETE removes
an unfinished one; an unfinished upload's answers carry ``Upload-Expires``, after which the hub removes it
with its bytes (``edge_upload_expiry_s``). The hub answers ``Civicam-Stored: <segment id>`` only once the
segment is verified, stored and indexed; that is the gateway's signal to delete its copy.

The segment a gateway is still recording is streamed (live view by parts): POST with
``Upload-Defer-Length: 1`` and metadata of only ``camera_id`` and ``start``, PATCHes at fragment
boundaries, and a last PATCH with ``Upload-Length`` and ``Civicam-Segment`` (the finished segment's
metadata, SHA-256 of the whole file included, encoded as ``Upload-Metadata``). Its parts are in the hub's
live view as they arrive (ingest/uploads.py). Gateways stream while creation answers carry
``Civicam-Live: watched`` (somebody watches the camera live, live/watchers.py); otherwise, by default, they
send whole segments, one request each.

View-only cameras behind a gateway are relayed through the gateway's own outbound connection: it long-polls
``GET /edge/relay-requests`` (which of its site's view-only cameras somebody watches now) and pushes each
finished segment of a wanted camera to ``POST /edge/relay/{camera_id}/segments`` into the hub's relay
window (live/relay.py), bounded in size and rate, never into the recordings or the index.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from civicam.api.deps import Ctx, bearer_token, require
from civicam.api.routers.live import live_watchers, relays
from civicam.api.state import shared
from civicam.audit.log import Actor
from civicam.auth import site_tokens
from civicam.auth.tls import hub_fingerprint
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Camera, Site, SiteToken
from civicam.domain.roles import Perm
from civicam.ingest import batches
from civicam.ingest.service import store_for
from civicam.ingest.uploads import (
    DEFERRED,
    EDGE_QUOTA_GAP,
    MAX_SEGMENT_BYTES,
    Appender,
    Final,
    Incoming,
    UploadError,
    UploadService,
    parse_metadata,
    segment_meta,
    stream_meta,
)
from civicam.live.relay import RelayRefused

router = APIRouter(tags=["edge"])
log = logging.getLogger("civicam.edge")
TUS = {"Tus-Resumable": "1.0.0"}
# What the upload routes below implement of tus 1.0 (https://tus.io/protocols/resumable-upload): no checksum
# extension, as a segment's SHA-256 travels in its metadata and is checked over the whole file.
TUS_EXTENSIONS = "creation,creation-with-upload,creation-defer-length,expiration,termination"
Writer = Annotated[Actor, Depends(require(Perm.registry_write))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]


async def uploads(request: Request) -> UploadService:
    # Async (as gateway_site): a sync dependency costs every gateway request a hop to the thread pool. Made
    # in the pool the first time only: opening the store walks the recordings tree.
    made: UploadService | None = getattr(request.app.state, "edge_uploads", None)
    if made is not None:
        return made
    ctx: Context = request.app.state.ctx
    return await run_in_threadpool(shared, request, "edge_uploads",
                                   lambda: UploadService(ctx.db, store_for(ctx), ctx.settings.edge_upload_expiry_s))


def _expires(when: datetime | None) -> dict[str, str]:
    """tus expiration: when an unfinished upload is removed, as an HTTP date (RFC 9110)."""
    return {"Upload-Expires": format_datetime(when.astimezone(UTC), usegmt=True)} if when is not None else {}


Uploads = Annotated[UploadService, Depends(uploads)]


def _watched(request: Request, camera_id: int) -> dict[str, str]:
    """``Civicam-Live: watched`` on a creation answer while somebody watches the camera live: the gateway
    then streams its segments in progress (live view by parts) until an answer no longer says so."""
    return {"Civicam-Live": "watched"} if live_watchers(request).watched(camera_id) else {}


def token_cache(request: Request) -> site_tokens.TokenCache:
    return shared(request, "site_token_cache", site_tokens.TokenCache)


async def gateway_site(request: Request) -> site_tokens.Resolved:
    """The site (and token row) whose live token the request carries; 401 with a clear reason otherwise.

    Async, and answered from the token cache when it can: most of a gateway's requests then cost no
    database transaction and no thread hop here. Whatever the request changes re-checks the token in its
    own transaction (``token_id``), so a revocation by another process holds at once there too.
    """
    token = bearer_token(request)
    if token is None or not token.startswith(site_tokens.PREFIX):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A site gateway token is required (Bearer cst_...).",
                            headers={"WWW-Authenticate": "Bearer"})
    cache = token_cache(request)
    resolved = cache.get(token)
    if resolved is None:
        ctx: Context = request.app.state.ctx
        resolved = await run_in_threadpool(cache.resolve, ctx.db.session, token)
    if resolved is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, REVOKED, headers={"WWW-Authenticate": "Bearer"})
    return resolved


REVOKED = ("This site token is revoked or unknown; ask the hub's admin for a new one "
           "(civicam site token SITE --rotate).")
Gateway = Annotated[site_tokens.Resolved, Depends(gateway_site)]


def _refused(exc: UploadError, request: Request | None = None, auth: site_tokens.Resolved | None = None
             ) -> JSONResponse:
    headers = dict(TUS)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
        if request is not None and auth is not None:
            token_cache(request).forget_token(auth.token_id)  # found revoked: the next request asks again
    return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=exc.status, headers=headers)


# -- what gateways send -----------------------------------------------------------------------------------


class CameraReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    view_only: bool = False
    probe: dict[str, Any]


@router.post("/edge/cameras")
def report_camera(body: CameraReport, auth: Gateway, svc: Uploads, request: Request) -> Response:
    """A gateway's camera and its probe verdict; returns the hub's camera id and its next sequence number."""
    try:
        return JSONResponse(svc.register_camera(auth.site_id, body.name, body.view_only, body.probe, auth.token_id))
    except UploadError as exc:
        return _refused(exc, request, auth)


@router.options("/edge/uploads")
def upload_options(auth: Gateway) -> Response:
    """tus discovery: the protocol versions, the extensions this hub speaks and its largest upload (tus
    answers OPTIONS without ``Tus-Resumable``). For gateway tokens only, like every edge route."""
    return Response(status_code=204, headers={"Tus-Version": "1.0.0", "Tus-Extension": TUS_EXTENSIONS,
                                              "Tus-Max-Size": str(MAX_SEGMENT_BYTES)})


@router.post("/edge/uploads")
async def create_upload(request: Request, auth: Gateway, svc: Uploads, upload_metadata: Annotated[str, Header()],
                        upload_length: Annotated[int | None, Header()] = None,
                        upload_defer_length: Annotated[str | None, Header()] = None,
                        content_type: Annotated[str, Header()] = "") -> Response:
    """Create (or find) the upload; with a body (tus creation-with-upload) its first bytes come along, which
    for a segment sent in one piece makes the whole delivery one request. ``Upload-Defer-Length: 1``
    instead of a length: the segment still being recorded, streamed (its bytes follow by PATCH)."""
    if upload_length is None:
        if upload_defer_length != "1":
            return JSONResponse({"detail": "Upload-Length (or Upload-Defer-Length: 1) is required.",
                                 "code": "length_required"}, 400, headers=TUS)
        try:
            camera_id, start = stream_meta(parse_metadata(upload_metadata))
            created = await run_in_threadpool(svc.create_stream, auth.site_id, camera_id, start, auth.token_id)
        except UploadError as exc:
            return _refused(exc, request, auth)
        headers = {**TUS, "Location": f"/api/edge/uploads/{created.upload_id}", "Upload-Offset": str(created.offset),
                   **_watched(request, camera_id)}
        if created.stored_segment is not None:
            return Response(status_code=200, headers={**headers, "Civicam-Stored": str(created.stored_segment)})
        return Response(status_code=201, headers={**headers, "Upload-Defer-Length": "1", **_expires(created.expires)})
    try:
        meta = segment_meta(parse_metadata(upload_metadata))
        if content_type.split(";")[0].strip() == "application/offset+octet-stream":
            # The usual case, a whole segment in one request: its body goes to disk as it arrives (a broken
            # connection keeps what came), then creating, verifying, storing and indexing it take one trip
            # to the thread pool and one transaction (three trips and four transactions before: a large
            # share of the hub's CPU per segment, docs/benchmarks.md "Edge gateways").
            body = svc.incoming(meta, upload_length)
            try:
                try:
                    async for chunk in request.stream():
                        body.write(chunk)
                except ClientDisconnect:
                    pass  # the link broke: what arrived is kept, and the gateway continues from its offset
                created, offset, stored = await run_in_threadpool(svc.receive, auth.site_id, meta, upload_length,
                                                                  body, auth.token_id)
            except BaseException:
                body.discard()
                raise
        else:
            created = await run_in_threadpool(svc.create, auth.site_id, meta, upload_length, auth.token_id)
            offset, stored = created.offset, created.stored_segment
    except UploadError as exc:
        return _refused(exc, request, auth)
    expires = created.expires
    headers = {**TUS, "Location": f"/api/edge/uploads/{created.upload_id}", "Upload-Offset": str(offset),
               **_watched(request, meta.camera_id)}
    if stored is None:
        headers.update(_expires(expires))
    if stored is not None:
        headers["Civicam-Stored"] = str(stored)
        return Response(status_code=200 if created.stored_segment is not None else 201, headers=headers)
    return Response(status_code=201, headers=headers)


@router.post("/edge/batches")
async def create_batch(request: Request, auth: Gateway, svc: Uploads, civicam_batch: Annotated[str, Header()],
                       content_length: Annotated[int | None, Header()] = None) -> Response:
    """Several finished segments in one request (ingest/batches.py): each received as its own tus
    creation-with-upload would be, and answered on its own in ``items`` (in manifest order): ``stored`` (the
    segment id) with ``location`` and ``offset``, or ``status``, ``code`` and ``detail`` of its refusal. A
    malformed manifest is refused whole, before any byte is read."""
    try:
        items = batches.parse_manifest(civicam_batch, content_length)
    except UploadError as exc:
        return _refused(exc, request, auth)
    bodies: list[Incoming | UploadError] = []
    try:
        for meta, length in items:
            try:
                bodies.append(svc.incoming(meta, length))
            except UploadError as exc:  # this one only (another request has it now): its bytes are skipped
                bodies.append(exc)
        splitter = batches.Splitter([length for _, length in items],
                                    [b if isinstance(b, Incoming) else None for b in bodies])
        try:
            async for chunk in request.stream():
                splitter.write(chunk)
        except ClientDisconnect:
            pass  # what arrived whole is stored, the item cut short kept resumable (receive_all)
        results = await run_in_threadpool(batches.receive_all, svc, auth.site_id, items, bodies, auth.token_id)
    except BaseException as exc:
        for body in bodies:  # a no-op for those an upload row owns now
            if isinstance(body, Incoming):
                body.discard()
        if isinstance(exc, UploadError):  # the body ran past its lengths
            return _refused(exc, request, auth)
        raise
    answer: list[dict[str, Any]] = []
    for (meta, _), result in zip(items, results, strict=True):
        if isinstance(result, UploadError):
            if result.status == 401:
                token_cache(request).forget_token(auth.token_id)
            # The request's 200 keeps it out of the access log (server.RoutineUploads): say what was refused.
            log.warning("site %d: batch item camera %d at %s refused (%d %s): %s", auth.site_id, meta.camera_id,
                        meta.start.isoformat(), result.status, result.code, result)
            answer.append({"status": result.status, "code": result.code, "detail": str(result)})
            continue
        created, offset, stored = result
        answer.append({"location": f"/api/edge/uploads/{created.upload_id}", "offset": offset, "stored": stored,
                       "watched": live_watchers(request).watched(meta.camera_id)})
    return JSONResponse({"items": answer}, headers=TUS)


async def _append(request: Request, svc: UploadService, auth: site_tokens.Resolved, upload_id: str,
                  offset: int, final: Final | None) -> tuple[int, int | None, datetime | None]:
    writer = await run_in_threadpool(svc.appender, auth.site_id, upload_id, offset, auth.token_id, final)
    return await _stream(request, writer)


async def _stream(request: Request, writer: Appender) -> tuple[int, int | None, datetime | None]:
    try:
        async for chunk in request.stream():
            writer.write(chunk)
    except ClientDisconnect:
        pass  # the link broke: what arrived is kept and the gateway resumes from it (close below)
    except BaseException:
        await run_in_threadpool(writer.close)
        raise
    new_offset, stored = await run_in_threadpool(writer.close)
    return new_offset, stored, writer.expires


@router.head("/edge/uploads/{upload_id}")
def upload_offset(upload_id: str, auth: Gateway, svc: Uploads) -> Response:
    try:
        offset, length, stored, expires = svc.status(auth.site_id, upload_id)
    except UploadError as exc:
        return Response(status_code=exc.status, headers=TUS)
    size = {"Upload-Length": str(length)} if length != DEFERRED else {"Upload-Defer-Length": "1"}
    headers = {**TUS, "Upload-Offset": str(offset), **size, "Cache-Control": "no-store", **_expires(expires)}
    if stored is not None:
        headers["Civicam-Stored"] = str(stored)
    return Response(status_code=200, headers=headers)


@router.patch("/edge/uploads/{upload_id}")
async def upload_append(upload_id: str, request: Request, auth: Gateway, svc: Uploads,
                        upload_offset: Annotated[int, Header()],
                        content_type: Annotated[str, Header()] = "",
                        upload_length: Annotated[int | None, Header()] = None,
                        civicam_segment: Annotated[str | None, Header()] = None) -> Response:
    """Append at the hub's offset. The last request of a streamed upload also gives ``Upload-Length`` and
    ``Civicam-Segment`` (the finished segment's metadata, as ``Upload-Metadata``): it completes the upload."""
    if content_type.split(";")[0].strip() != "application/offset+octet-stream":
        return JSONResponse({"detail": "Content-Type must be application/offset+octet-stream."}, 415, headers=TUS)
    try:
        final = None
        if upload_length is not None or civicam_segment is not None:
            if upload_length is None or civicam_segment is None:
                raise UploadError(400, "bad_final", "Upload-Length and Civicam-Segment come together, on the "
                                  "request that ends a streamed upload.")
            final = Final(upload_length, segment_meta(parse_metadata(civicam_segment)))
        offset, stored, expires = await _append(request, svc, auth, upload_id, upload_offset, final)
    except UploadError as exc:
        return _refused(exc, request, auth)
    headers = {**TUS, "Upload-Offset": str(offset)}
    if stored is None:
        headers.update(_expires(expires))
    if stored is not None:
        headers["Civicam-Stored"] = str(stored)
    return Response(status_code=204, headers=headers)


@router.delete("/edge/uploads/{upload_id}")
def upload_terminate(upload_id: str, auth: Gateway, svc: Uploads, request: Request) -> Response:
    """tus termination: remove an unfinished upload and its bytes (the recorder dropped the segment that
    was being streamed). A stored one is refused (409 ``stored``)."""
    try:
        svc.terminate(auth.site_id, upload_id, auth.token_id)
    except UploadError as exc:
        return _refused(exc, request, auth)
    return Response(status_code=204, headers=TUS)


class GapReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    camera_id: int
    start: datetime
    end: datetime | None = None
    reason: str = Field(default=EDGE_QUOTA_GAP, max_length=32)
    detail: str = Field(default="", max_length=1000)


@router.post("/edge/gaps")
def report_gap(body: GapReport, auth: Gateway, svc: Uploads, request: Request) -> Response:
    """A gap with its bounds: segments the gateway had to drop (its spool quota was reached), or the gateway's
    recorder lost the camera (``stream_lost``; open, without ``end``, until the camera is back)."""
    detail = body.detail or ("spool quota reached" if body.reason == EDGE_QUOTA_GAP else "")
    try:
        gap_id = svc.gap(auth.site_id, body.camera_id, body.start, body.end, detail, body.reason, auth.token_id)
    except UploadError as exc:
        return _refused(exc, request, auth)
    return JSONResponse({"id": gap_id})


@router.post("/edge/health")
def report_health(body: dict[str, Any], auth: Gateway, request: Request, ctx: Ctx) -> dict[str, str]:
    """The gateway's own health (spool use, upload lag) and each camera's; kept for the site page."""
    if len(json.dumps(body)) > 64 * 1024:
        raise HTTPException(413, "A health report is at most 64 KiB.")
    with ctx.db.session() as s:
        row = s.get(SiteToken, auth.token_id)
        if row is None or row.revoked_at is not None:
            token_cache(request).forget_token(auth.token_id)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, REVOKED, headers={"WWW-Authenticate": "Bearer"})
        row.last_contact = utcnow()
        row.health = body
    return {"status": "ok", "site_id": str(auth.site_id)}


# -- view-only cameras relayed through the gateway ---------------------------------------------------------

RELAY_HOLD_S = 10.0  # a long poll is answered at once when the wanted set changed, else after this
RELAY_POLL_S = 0.2  # how often a held long poll looks at the relays (a dictionary read, no database)


def _site_view_only(ctx: Context, site_id: int) -> list[int]:
    """The site's accepted view-only cameras behind its gateway: the only ones its long poll can be asked for."""
    with ctx.db.session() as s:
        return list(s.scalars(select(Camera.id).where(Camera.site_id == site_id, Camera.source == "edge",
                                                      Camera.view_only.is_(True), Camera.status == "accepted")))


def _relay_camera(ctx: Context, gateway: site_tokens.Resolved, camera_id: int) -> None:
    site_id = gateway.site_id
    with ctx.db.session() as s:
        if not site_tokens.is_live(s, gateway.token_id):  # the token cache may be up to 10 s behind a revoke
            raise RelayRefused(401, "revoked", "This site token was revoked.")
        cam = s.get(Camera, camera_id)
        if cam is None or cam.site_id != site_id:
            raise RelayRefused(403, "wrong_site", f"Camera {camera_id} does not belong to site {site_id}; this "
                               "site's token relays only its own cameras.")
        if cam.source != "edge" or not cam.view_only:
            raise RelayRefused(403, "not_view_only", f"Camera {camera_id} is not a view-only camera behind a "
                               "gateway: nothing is relayed for it.")


def _relay_refused(exc: RelayRefused) -> JSONResponse:
    headers = {"Retry-After": "1"} if exc.status == 429 else {}
    return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=exc.status, headers=headers)


@router.get("/edge/relay-requests")
async def relay_requests(request: Request, gateway: Gateway, ctx: Ctx,
                         have: Annotated[str, Query(max_length=4000)] = "") -> Response:
    """Long poll: which of this site's view-only cameras somebody watches now. Answered at once when that
    differs from ``have`` (the cameras the gateway relays, comma-separated), else when it changes or after
    ``RELAY_HOLD_S``. The wait holds no thread and no database connection."""
    try:
        having = sorted({int(x) for x in have.split(",") if x.strip()})
    except ValueError:
        return JSONResponse({"detail": "have is a comma-separated list of camera ids.", "code": "bad_have"}, 400)
    ids = await run_in_threadpool(_site_view_only, ctx, gateway.site_id)
    svc = relays(request, ctx)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RELAY_HOLD_S
    wanted = svc.wanted(ids)
    while wanted == having and loop.time() < deadline:
        if await request.is_disconnected():
            break
        await asyncio.sleep(RELAY_POLL_S)
        wanted = svc.wanted(ids)
    return JSONResponse({"cameras": wanted, "hold_s": RELAY_HOLD_S}, headers={"Cache-Control": "no-store"})


@router.post("/edge/relay/{camera_id}/segments")
async def relay_push(camera_id: int, request: Request, gateway: Gateway, ctx: Ctx,
                     content_length: Annotated[int | None, Header()] = None,
                     civicam_start: Annotated[str | None, Header()] = None) -> Response:
    """One finished segment of a wanted view-only camera, pushed by its gateway: checked (site, size, rate,
    that it demuxes as video), put in the camera's relay window, served blurred like the pulled relay;
    never recorded or indexed. ``409 not_wanted`` tells the gateway to stop pulling the camera."""
    try:
        await run_in_threadpool(_relay_camera, ctx, gateway, camera_id)
        relay = relays(request, ctx).pushed(camera_id)
        if relay is None:
            raise RelayRefused(409, "not_wanted", "Nobody watches this camera; stop relaying it.")
        if content_length is None:
            raise RelayRefused(411, "length_required", "A relayed segment needs a Content-Length.")
        try:
            start = datetime.fromisoformat(civicam_start or "")
        except ValueError:
            raise RelayRefused(400, "bad_start", "Civicam-Start must be the segment's start (ISO 8601).") from None
        relay.admit(content_length)
    except RelayRefused as exc:
        return _relay_refused(exc)
    tmp = relay.incoming / f"{secrets.token_hex(8)}.mp4"
    try:
        received = 0
        with open(tmp, "wb") as fh:
            async for chunk in request.stream():
                received += len(chunk)
                if received > content_length:
                    raise RelayRefused(413, "too_large", "The body is longer than its Content-Length.")
                fh.write(chunk)
        if received != content_length:
            raise RelayRefused(400, "short_body", "The body is shorter than its Content-Length.")
        seg = await run_in_threadpool(relay.receive, tmp, start)
    except RelayRefused as exc:
        return _relay_refused(exc)
    except ClientDisconnect:
        return Response(status_code=400)
    except OSError:  # the relay was reaped (its folder deleted) while the segment arrived
        return _relay_refused(RelayRefused(409, "not_wanted", "Nobody watches this camera; stop relaying it."))
    finally:
        tmp.unlink(missing_ok=True)
    return JSONResponse({"seq": seg.seq, "start": seg.start.isoformat(), "end": seg.end.isoformat()})


# -- what admins do ---------------------------------------------------------------------------------------


class TokenAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(pattern="^(issue|rotate|revoke)$")


@router.post("/sites/{site_id}/token")
def site_token(site_id: int, body: TokenAction, actor: Writer, ctx: Ctx, request: Request) -> dict[str, Any]:
    """Issue, rotate or revoke the site's gateway token; a new token is in this answer only."""
    token_cache(request).clear()  # cleared again below, after the commit; this only shortens the window
    try:
        return _site_token(site_id, body, actor, ctx)
    finally:
        token_cache(request).clear()


def _site_token(site_id: int, body: TokenAction, actor: Actor, ctx: Context) -> dict[str, Any]:
    with ctx.db.session() as s:
        try:
            if body.action == "revoke":
                return {"site_id": site_id, "revoked": site_tokens.revoke(s, actor, site_id)}
            issued = site_tokens.issue(s, actor, site_id, rotate=body.action == "rotate")
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except site_tokens.SiteTokenError as exc:
            raise HTTPException(409, str(exc)) from None
    return {"site_id": site_id, "token": issued.token, "hub_fingerprint": hub_fingerprint(ctx.settings)}


@router.get("/sites/{site_id}/gateway")
def site_gateway(site_id: int, actor: Reader, ctx: Ctx) -> dict[str, Any]:
    """Whether the site has a live token, when its gateway last called, and what it reported."""
    with ctx.db.session() as s:
        if s.get(Site, site_id) is None or (actor.site_id is not None and actor.site_id != site_id):
            raise HTTPException(404, f"Site {site_id} not found.")
        row = site_tokens.active_token(s, site_id)
        return {"site_id": site_id, "enrolled": row is not None,
                "token_issued": row.created_at.isoformat() if row else None,
                "last_contact": row.last_contact.isoformat() if row and row.last_contact else None,
                "health": row.health if row else None}
