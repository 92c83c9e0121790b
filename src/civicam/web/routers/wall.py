"""The camera wall: a grid of blurred live views, paged on the server."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from civicam.domain.roles import Perm
from civicam.registry import service
from civicam.web.pages import need, opt_int, page_ctx, pager, render, session_actor

router = APIRouter(include_in_schema=False)

WALL_SIZES = (1, 4, 9, 16)


@router.get("/wall", response_class=HTMLResponse)
def wall(request: Request, n: int = 4, page: int = Query(1, ge=1), site: str = Query("", alias="site_id")) \
        -> HTMLResponse:
    actor, _, token = session_actor(request)
    site_id = opt_int(site, "site")
    need(actor, Perm.video_view)
    n = n if n in WALL_SIZES else 4
    with page_ctx(request).db.session() as s:
        if site_id is not None:
            service.get_site(s, actor, site_id)
        total = service.list_cameras(s, actor, site_id, None, "accepted", None, 0, 1)[1]
        pg = pager(request, "page", page, total, n)
        cams, _ = service.list_cameras(s, actor, site_id, None, "accepted", None, (pg["page"] - 1) * n, n)
        tiles = [{"id": c.id, "name": c.name, "site_id": c.site_id} for c in cams]
        sites = service.list_sites(s, actor)
        site_opts = [{"id": x.id, "name": x.name} for x in sites]
    cols = {1: 1, 4: 2, 9: 3, 16: 4}[n]
    return render(request, "wall.html", actor, token, tiles=tiles, n=n, cols=cols, pg=pg, sizes=WALL_SIZES,
                  site_id=site_id, sites=site_opts)
