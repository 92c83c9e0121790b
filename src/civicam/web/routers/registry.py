"""Registry pages: one camera (player, timeline, probe report) and one site with its cameras."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from civicam.db.models import Region, Site
from civicam.domain.roles import Perm
from civicam.domain.urls import redact
from civicam.registry import service
from civicam.web.advice import advice_for
from civicam.web.pages import need, page_ctx, pager, recording_health, render, session_actor

router = APIRouter(include_in_schema=False)

CAMERAS_PER_PAGE = 50


def _probe_view(probe: Any) -> dict[str, Any] | None:
    if probe is None:
        return None
    return {"verdict": probe.verdict, "measured": probe.measured, "created_at": probe.created_at,
            "reasons": [{**r, **advice_for(r.get("code", ""))} for r in (probe.reasons or [])]}


@router.get("/cameras/{camera_id}", response_class=HTMLResponse)
def camera_page(request: Request, camera_id: int) -> HTMLResponse:
    actor, _, token = session_actor(request)
    need(actor, Perm.registry_read)
    with page_ctx(request).db.session() as s:
        cam = service.get_camera(s, actor, camera_id)  # NotFound for other sites' cameras (site reps)
        site = s.get(Site, cam.site_id)
        camera = {"id": cam.id, "name": cam.name, "url": redact(cam.url), "status": cam.status, "site_id": cam.site_id,
                  "site": site.name if site else "?", "created_at": cam.created_at, "probed_at": cam.probed_at,
                  "has_credentials": cam.has_credentials, "view_only": cam.view_only, "source": cam.source}
        probe = _probe_view(service.latest_probe(s, cam.id))
    health = recording_health(request).get(camera_id)
    return render(request, "camera.html", actor, token, camera=camera, probe=probe, health=health)


@router.get("/sites/{site_id}", response_class=HTMLResponse)
def site_page(request: Request, site_id: int, page: int = Query(1, ge=1)) -> HTMLResponse:
    actor, _, token = session_actor(request)
    need(actor, Perm.registry_read)
    health = recording_health(request)
    with page_ctx(request).db.session() as s:
        site = service.get_site(s, actor, site_id)
        region = s.get(Region, site.region_id)
        total = service.list_cameras(s, actor, site_id, None, None, None, 0, 1)[1]
        pg = pager(request, "page", page, total, CAMERAS_PER_PAGE)
        cams, _ = service.list_cameras(s, actor, site_id, None, None, None, (pg["page"] - 1) * CAMERAS_PER_PAGE,
                                       CAMERAS_PER_PAGE)
        info = {"id": site.id, "name": site.name, "region": region.name if region else "?",
                "region_id": site.region_id, "contact_name": site.contact_name,
                "contact_email": site.contact_email, "contact_phone": site.contact_phone}
        cam_rows = [{"id": c.id, "name": c.name, "status": c.status, "health": health.get(c.id, {}).get("state"),
                     "view_only": c.view_only, "source": c.source} for c in cams]
    return render(request, "site.html", actor, token, site=info, cameras=cam_rows, pg=pg)
