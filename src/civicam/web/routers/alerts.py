"""The alerts page (the list and the rules are read from the API by the page's script)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from civicam.domain.roles import Perm
from civicam.registry import service
from civicam.web.pages import need, page_ctx, render, session_actor

router = APIRouter(include_in_schema=False)


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request) -> HTMLResponse:
    actor, _, token = session_actor(request)
    need(actor, Perm.analytics_read)
    with page_ctx(request).db.session() as s:
        sites = [{"id": x.id, "name": x.name, "region_id": x.region_id} for x in service.list_sites(s, actor)]
        regions = [{"id": r.id, "name": r.name} for r in service.list_regions(s, actor)]
    return render(request, "alerts.html", actor, token, sites=sites, regions=regions)
