"""Cameras: register, list (paged on the server), probe and disable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from civicam.api.deps import Ctx, DbSession, require
from civicam.api.schemas import (
    CameraCreate,
    CameraPage,
    CameraPublic,
    CameraStatusUpdate,
    ProbePublic,
    ProbeRequest,
)
from civicam.audit.log import Actor
from civicam.db.models import Camera, Probe
from civicam.domain.roles import Perm
from civicam.domain.urls import redact
from civicam.registry import service
from civicam.registry.onboarding import probe_cameras

router = APIRouter(tags=["cameras"])
Writer = Annotated[Actor, Depends(require(Perm.camera_write))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]
MAX_PAGE = 200  # cameras per page: bounded work (and response size) for any reader


def camera_public(session: Session, camera: Camera, probes: dict[int, Probe] | None = None) -> CameraPublic:
    """The camera as the API shows it; ``probes`` (``service.latest_probes``) saves a query per camera."""
    probe = probes.get(camera.id) if probes is not None else service.latest_probe(session, camera.id)
    return CameraPublic(
        # redact: cameras registered before query credentials were split off may still hold some in the URL.
        id=camera.id, site_id=camera.site_id, name=camera.name, url=redact(camera.url),
        has_credentials=camera.has_credentials, status=camera.status, created_at=camera.created_at,
        probed_at=camera.probed_at, last_probe=ProbePublic.model_validate(probe) if probe else None,
    )


@router.get("/cameras", response_model=CameraPage)
def list_cameras(
    actor: Reader,
    session: DbSession,
    site_id: int | None = None,
    region_id: int | None = None,
    status: str | None = None,
    q: str | None = Query(None, max_length=200, description="Part of the camera's name."),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
) -> CameraPage:
    items, total = service.list_cameras(session, actor, site_id, region_id, status, q, offset, limit)
    probes = service.latest_probes(session, [c.id for c in items])  # one query for the page's probes
    return CameraPage(items=[camera_public(session, c, probes) for c in items], total=total, offset=offset,
                      limit=limit)


@router.post("/cameras", response_model=CameraPublic, status_code=201)
def create_camera(body: CameraCreate, actor: Writer, session: DbSession, ctx: Ctx) -> CameraPublic:
    camera = service.add_camera(session, actor, ctx.secrets, body.site_id, body.name, body.url, body.username,
                                body.password, media_dirs=ctx.settings.registry.media_dirs,
                                policy=ctx.settings.policy)
    return camera_public(session, camera)


@router.get("/cameras/{camera_id}", response_model=CameraPublic)
def get_camera(camera_id: int, actor: Reader, session: DbSession) -> CameraPublic:
    return camera_public(session, service.get_camera(session, actor, camera_id))


@router.patch("/cameras/{camera_id}", response_model=CameraPublic)
def set_status(camera_id: int, body: CameraStatusUpdate, actor: Writer, session: DbSession) -> CameraPublic:
    camera = service.get_camera(session, actor, camera_id)
    return camera_public(session, service.set_camera_status(session, actor, camera, body.status, body.reason))


@router.post("/cameras/{camera_id}/probe", response_model=ProbePublic)
def probe_camera(camera_id: int, actor: Writer, ctx: Ctx, body: ProbeRequest | None = None) -> ProbePublic:
    # A plain (sync) endpoint: FastAPI runs it in its thread pool, so a 5 s probe never blocks the event loop.
    result = probe_cameras(ctx, actor, [camera_id], body.seconds if body else None)[camera_id]
    return ProbePublic.model_validate(result.to_dict())


@router.post("/sites/{site_id}/probe", response_model=dict[int, ProbePublic])
def probe_site(site_id: int, actor: Writer, ctx: Ctx, body: ProbeRequest | None = None) -> dict[int, ProbePublic]:
    with ctx.db.session() as session:
        service.get_site(session, actor, site_id)
        cameras, _ = service.list_cameras(session, actor, site_id=site_id)
        ids = [c.id for c in cameras if c.status != "disabled"]
    results = probe_cameras(ctx, actor, ids, body.seconds if body else None)
    return {cid: ProbePublic.model_validate(r.to_dict()) for cid, r in results.items()}
