"""The overview page: regions and sites with camera counts by status, and one page of cameras."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from civicam.domain.roles import Perm
from civicam.registry import overview as counts
from civicam.registry import service
from civicam.web.pages import PageError, need, opt_int, page_ctx, pager, recording_health, render, session_actor

router = APIRouter(include_in_schema=False)

CAMERAS_PER_PAGE = 50
SITES_PER_PAGE = 25


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, q: str = Query("", max_length=200), region: str = Query("", alias="region_id"),
             status: str = "", page: int = Query(1, ge=1), spage: int = Query(1, ge=1)) -> HTMLResponse:
    actor, _, token = session_actor(request)
    region_id = opt_int(region, "region")
    need(actor, Perm.registry_read)
    if status and status not in service.CAMERA_STATUSES:
        raise PageError(400, "Bad filter", f"Unknown status '{status}'.")
    health = recording_health(request)
    online = {cid for cid, h in health.items() if h["state"] == "online"}
    empty = dict.fromkeys(counts.STATUS_KEYS, 0)
    with page_ctx(request).db.session() as s:
        regions = service.list_regions(s, actor)
        rcounts = counts.region_counts(s, actor)
        cam_site = counts.camera_sites(s, health)
        region_rows = [{"id": r.id, "name": r.name, "sites": rcounts.get(r.id, (0, empty))[0],
                        "counts": rcounts.get(r.id, (0, empty))[1]} for r in regions]
        # Sites: filtered by region and by name (site or region), paged on the server.
        stotal = counts.count_sites(s, actor, region_id, q or None)
        spager = pager(request, "spage", spage, stotal, SITES_PER_PAGE)
        site_page = counts.site_page(s, actor, region_id, q or None, (spager["page"] - 1) * SITES_PER_PAGE,
                                     SITES_PER_PAGE)
        scounts = counts.site_counts(s, [site.id for site, _ in site_page])
        site_online: dict[int, int] = {}
        for cid in online:
            site_online[cam_site.get(cid, -1)] = site_online.get(cam_site.get(cid, -1), 0) + 1
        site_rows = []
        for site, region_name in site_page:
            c = scounts.get(site.id, empty)
            on = site_online.get(site.id, 0)
            site_rows.append({"id": site.id, "name": site.name, "region": region_name, "counts": c,
                              "online": on, "offline": max(0, c["accepted"] - on) if health else None,
                              "contact": site.contact_name})
        # Cameras: the scoped service query, one page.
        total_probe = service.list_cameras(s, actor, None, region_id, status or None, q or None, 0, 1)[1]
        cpager = pager(request, "page", page, total_probe, CAMERAS_PER_PAGE)
        cams, _ = service.list_cameras(s, actor, None, region_id, status or None, q or None,
                                       (cpager["page"] - 1) * CAMERAS_PER_PAGE, CAMERAS_PER_PAGE)
        names = counts.site_names(s, {c.site_id for c in cams})
        cam_rows = [{"id": c.id, "name": c.name, "site_id": c.site_id, "site": names.get(c.site_id, "?"),
                     "status": c.status, "health": health.get(c.id, {}).get("state")} for c in cams]
    totals = {"online": len(online), "recording": bool(health)}
    return render(request, "overview.html", actor, token, regions=region_rows, sites=site_rows, cameras=cam_rows,
                  spager=spager, cpager=cpager, q=q, region_id=region_id, status=status, totals=totals,
                  statuses=service.CAMERA_STATUSES, all_regions=regions)
