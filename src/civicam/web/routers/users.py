"""The users page: every user with role and site, for admins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from civicam.db.models import Site, User
from civicam.domain.roles import Perm, Role
from civicam.registry import service
from civicam.web.pages import need, page_ctx, render, session_actor

router = APIRouter(include_in_schema=False)


@router.get("/users", response_class=HTMLResponse)
def users(request: Request) -> HTMLResponse:
    actor, _, token = session_actor(request)
    need(actor, Perm.users_write)
    with page_ctx(request).db.session() as s:
        rows = s.execute(select(User, Site.name).join(Site, Site.id == User.site_id, isouter=True)
                         .order_by(User.id)).all()
        people = [{"id": u.id, "username": u.username, "role": u.role, "site": site_name, "site_id": u.site_id,
                   "view_unblurred": u.view_unblurred, "is_active": u.is_active, "created_at": u.created_at}
                  for u, site_name in rows]
        sites = [{"id": x.id, "name": x.name} for x in service.list_sites(s, actor)]
    return render(request, "users.html", actor, token, users=people, sites=sites, roles=[r.value for r in Role])
