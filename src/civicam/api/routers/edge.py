"""Site gateways: enrolment tokens (admins), and what gateways send (cameras, resumable segment uploads, gaps,
health), each request authenticated by the site's token and confined to that site's cameras.

Uploads speak tus 1.0.0 (core, creation, creation-with-upload and expiration;
https://tus.io/protocols/resumable-upload): POST creates (or, for the same camera, start and SHA-256, finds)
the upload, HEAD tells the offset the hub has, PATCH appends at that offset; an unfinished upload's answers
carry ``Upload-Expires``, after which the hub removes it with its bytes (``edge_upload_expiry_s``). The hub
answers ``Civicam-Stored: <segment id>`` only once the segment is verified, stored and indexed; that is the
gateway's signal to delete its copy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from civicam.api.deps import Ctx, bearer_token, require
from civicam.api.state import shared
from civicam.audit.log import Actor
from civicam.auth import site_tokens
from civicam.auth.tls import hub_fingerprint
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Site, SiteToken
from civicam.domain.roles import Perm
from civicam.ingest.service import store_for
from civicam.ingest.uploads import EDGE_QUOTA_GAP, Appender, UploadError, UploadService, parse_metadata, segment_meta

router = APIRouter(tags=["edge"])
TUS = {"Tus-Resumable": "1.0.0"}
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


@router.post("/edge/uploads")
async def create_upload(request: Request, auth: Gateway, svc: Uploads,
                        upload_length: Annotated[int, Header()], upload_metadata: Annotated[str, Header()],
                        content_type: Annotated[str, Header()] = "") -> Response:
    """Create (or find) the upload; with a body (tus creation-with-upload) its first bytes come along, which
    for a segment sent in one piece makes the whole delivery one request."""
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
    headers = {**TUS, "Location": f"/api/edge/uploads/{created.upload_id}", "Upload-Offset": str(offset)}
    if stored is None:
        headers.update(_expires(expires))
    if stored is not None:
        headers["Civicam-Stored"] = str(stored)
        return Response(status_code=200 if created.stored_segment is not None else 201, headers=headers)
    return Response(status_code=201, headers=headers)


async def _append(request: Request, svc: UploadService, auth: site_tokens.Resolved, upload_id: str,
                  offset: int) -> tuple[int, int | None, datetime | None]:
    writer = await run_in_threadpool(svc.appender, auth.site_id, upload_id, offset, auth.token_id)
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
    headers = {**TUS, "Upload-Offset": str(offset), "Upload-Length": str(length), "Cache-Control": "no-store",
               **_expires(expires)}
    if stored is not None:
        headers["Civicam-Stored"] = str(stored)
    return Response(status_code=200, headers=headers)


@router.patch("/edge/uploads/{upload_id}")
async def upload_append(upload_id: str, request: Request, auth: Gateway, svc: Uploads,
                        upload_offset: Annotated[int, Header()],
                        content_type: Annotated[str, Header()] = "") -> Response:
    if content_type.split(";")[0].strip() != "application/offset+octet-stream":
        return JSONResponse({"detail": "Content-Type must be application/offset+octet-stream."}, 415, headers=TUS)
    try:
        offset, stored, expires = await _append(request, svc, auth, upload_id, upload_offset)
    except UploadError as exc:
        return _refused(exc, request, auth)
    headers = {**TUS, "Upload-Offset": str(offset)}
    if stored is None:
        headers.update(_expires(expires))
    if stored is not None:
        headers["Civicam-Stored"] = str(stored)
    return Response(status_code=204, headers=headers)


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
