"""The audit page: search the log (the API's own query) and show the chain's verification."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from civicam.audit.anchor import verify_for_view
from civicam.audit.query import filtered
from civicam.db.models import AuditEvent
from civicam.domain.roles import Perm
from civicam.web.pages import need, page_ctx, pager, parse_time, render, session_actor

router = APIRouter(include_in_schema=False)

AUDIT_PER_PAGE = 50


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, q: str = Query("", max_length=200), action: str = Query("", max_length=64),
          since: str = "", until: str = "", page: int = Query(1, ge=1)) -> HTMLResponse:
    actor, _, token = session_actor(request)
    need(actor, Perm.audit_read)
    from civicam.api.routers.audit import search  # the API's own query, so page and API never disagree

    t0, t1 = parse_time(since, "from"), parse_time(until, "to")
    with page_ctx(request).db.session() as s:
        total = _audit_count(s, q, action, t0, t1)
        pg = pager(request, "page", page, total, AUDIT_PER_PAGE)
        events = search(actor, s, q or None, action or None, t0, t1, (pg["page"] - 1) * AUDIT_PER_PAGE,
                        AUDIT_PER_PAGE)
        rows = [{"id": e.id, "ts": e.ts, "actor": e.actor, "action": e.action, "object": f"{e.object_type}"
                 + (f" {e.object_id}" if e.object_id else ""), "source": e.source, "detail": e.detail,
                 "hash": e.hash[:12]} for e in events]
        count, problems = verify_for_view(s, page_ctx(request).settings)  # from the last signed checkpoint
        actions = sorted(s.execute(select(AuditEvent.action).distinct()).scalars())
    verification = {"ok": not problems, "entries": count, "problems": [p.message for p in problems[:20]]}
    return render(request, "audit.html", actor, token, events=rows, pg=pg, q=q, action=action, since=since,
                  until=until, verification=verification, actions=actions)


def _audit_count(s: Session, q: str, action: str, t0: datetime | None, t1: datetime | None) -> int:
    return int(s.execute(filtered(select(func.count()).select_from(AuditEvent), q, action, t0, t1)).scalar_one())
