"""The operators' web dashboard: server-rendered pages (Jinja2) plus small vanilla JS modules.

Pages read through the same scoped registry service as the API (a site representative sees only their
own site, here as there); every change and every video view goes through the JSON API from the browser,
so roles, validation and audit are the API's own and nothing is audited twice. Sign-in turns a password
into the same kind of token the API issues, kept in an ``HttpOnly; SameSite=Strict`` cookie that
``civicam.api.deps.current_actor`` already accepts. CSRF: see ``civicam.web.csrf``.

Mount with ``install(app)`` (router, static files, CSRF middleware, login redirects).
"""

from __future__ import annotations

import importlib
import math
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from civicam import __version__
from civicam.api.deps import SESSION_COOKIE, client_address
from civicam.api.routers.auth import login_throttle, too_many
from civicam.audit.anchor import verify_for_view
from civicam.audit.log import Actor, record
from civicam.audit.query import filtered
from civicam.auth.login import sign_in
from civicam.auth.users import revoke_token, user_for_token
from civicam.context import Context
from civicam.db.models import AuditEvent, Camera, Region, Site, User
from civicam.domain.roles import Perm, Role, allows
from civicam.domain.urls import redact
from civicam.registry import service
from civicam.web.advice import ADVICE, advice_for
from civicam.web.csrf import CSRFMiddleware, csrf_token, same_origin, valid

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

CAMERAS_PER_PAGE = 50
SITES_PER_PAGE = 25
AUDIT_PER_PAGE = 50
WALL_SIZES = (1, 4, 9, 16)


class LoginRequired(Exception):
    """No valid browser session: pages redirect to the sign-in page, ``/web/api`` answers 401."""


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


# Session and page context --------------------------------------------------------------------------------


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _session_actor(request: Request) -> tuple[Actor, User, str]:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    with _ctx(request).db.session() as s:
        user = user_for_token(s, token)
        if user is None:
            raise LoginRequired()
        s.expunge(user)
    actor = Actor(name=user.username, source=client_address(request), role=user.role, site_id=user.site_id,
                  user_id=user.id, view_unblurred=user.view_unblurred)
    return actor, user, token


def _need(actor: Actor, perm: Perm) -> None:
    if not allows(actor.role, perm):
        raise PageError(403, "Not allowed", f"Your role ({actor.role}) may not open this page.")


def _features() -> dict[str, bool]:
    """Which optional API areas this build has (the same optional routers ``create_app`` mounts)."""
    found = {}
    for name in ("recordings", "live", "analytics"):
        try:
            importlib.import_module(f"civicam.api.routers.{name}")
            found[name] = True
        except Exception:  # noqa: BLE001 — a broken or missing optional area just hides its UI parts
            found[name] = False
    return found


_FEATURES: dict[str, bool] | None = None


def features() -> dict[str, bool]:
    global _FEATURES
    if _FEATURES is None:
        _FEATURES = _features()
    return _FEATURES


def render(request: Request, name: str, actor: Actor | None, token: str | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    perms = {p.value: allows(actor.role, p) for p in Perm} if actor else {}
    base = {"actor": actor, "perms": perms, "csrf": csrf_token(token) if token else "",
            "features": features(), "version": __version__, "path": request.url.path}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def page_url(request: Request, **changes: Any) -> str:
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def _pager(request: Request, key: str, page: int, total: int, per_page: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    return {"key": key, "page": page, "pages": pages, "total": total, "per_page": per_page,
            "first": (page - 1) * per_page + 1 if total else 0, "last": min(page * per_page, total),
            "prev": page_url(request, **{key: page - 1}) if page > 1 else None,
            "next": page_url(request, **{key: page + 1}) if page < pages else None}


def _recording_health(request: Request) -> dict[int, dict[str, Any]]:
    """Per camera recorder state from the in-process recording service, when this hub runs one."""
    for svc in getattr(request.app.state, "services", []):
        health = getattr(svc, "health", None)
        if callable(health):
            try:
                return {cid: {"state": h.state, "since": h.since} for cid, h in health().items()}
            except Exception:  # noqa: BLE001 — health is informative; the page must still render
                return {}
    return {}


def _opt_int(value: str, what: str) -> int | None:
    """An optional id from a GET form, where "" means "any"."""
    if not value:
        return None
    if not value.isdigit():
        raise PageError(400, "Bad filter", f"'{value}' is not a {what} number.")
    return int(value)


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# Sign-in and sign-out ------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, None, next=_safe_next(next), error=None, username="")


@router.post("/login")
def login_submit(request: Request, username: str = Form(""), password: str = Form(""),
                 next: str = Form("/")) -> Response:
    # Login CSRF: a sign-in form posted from another origin is refused (the browser sends Origin on POST).
    if not same_origin(request.headers.get("origin"), request.headers.get("host"), request.url.scheme):
        return render(request, "login.html", None, None, status_code=403, next="/", username="",
                      error="Sign-in from another site was refused.")
    ctx = _ctx(request)
    source = client_address(request)
    with ctx.db.session() as s:
        signed = sign_in(s, login_throttle(request), username, password, source, ctx.settings.token_ttl_s,
                         {"via": "web"})
        if signed.token is None:
            msg = "Enter your username and password." if not (username and password) else \
                "Wrong username or password." if signed.retry_after_s is None else too_many(signed.retry_after_s).detail
            return render(request, "login.html", None, None, status_code=401 if signed.retry_after_s is None else 429,
                          next=_safe_next(next), error=msg, username=username)
        token = signed.token
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=ctx.settings.token_ttl_s, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    if not token:
        return response
    if not valid(token, csrf_token) or not same_origin(request.headers.get("origin"), request.headers.get("host"),
                                                        request.url.scheme):
        raise PageError(403, "Sign-out refused", "The sign-out form was stale or came from another site; "
                        "reload the page and sign out again.")
    with _ctx(request).db.session() as s:
        user = user_for_token(s, token)
        if user is not None and revoke_token(s, token):
            record(s, Actor(name=user.username, source=client_address(request), role=user.role), "auth.logout",
                   "user", user.id, {"via": "web"})
    return response


# Overview --------------------------------------------------------------------------------------------------


def _status_counts() -> list[Any]:
    return [func.count(Camera.id)] + [
        func.coalesce(func.sum(case((Camera.status == st, 1), else_=0)), 0) for st in service.CAMERA_STATUSES
    ]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, q: str = Query("", max_length=200), region: str = Query("", alias="region_id"),
             status: str = "", page: int = Query(1, ge=1), spage: int = Query(1, ge=1)) -> HTMLResponse:
    actor, _, token = _session_actor(request)
    region_id = _opt_int(region, "region")
    _need(actor, Perm.registry_read)
    if status and status not in service.CAMERA_STATUSES:
        raise PageError(400, "Bad filter", f"Unknown status '{status}'.")
    health = _recording_health(request)
    online = {cid for cid, h in health.items() if h["state"] == "online"}
    with _ctx(request).db.session() as s:
        regions = service.list_regions(s, actor)
        # Regions: sites and camera counts by status, in one grouped query.
        rstmt = select(Region.id, func.count(func.distinct(Site.id)), *_status_counts()) \
            .select_from(Region).join(Site, Site.region_id == Region.id, isouter=True) \
            .join(Camera, Camera.site_id == Site.id, isouter=True).group_by(Region.id)
        if actor.role == Role.site_rep:
            rstmt = rstmt.where(Site.id == actor.site_id)
        rcounts = {row[0]: row[1:] for row in s.execute(rstmt)}
        cam_site = dict(s.execute(select(Camera.id, Camera.site_id).where(Camera.id.in_(list(health))))
                        .all()) if health else {}
        region_rows = [{"id": r.id, "name": r.name, "sites": rcounts.get(r.id, (0,) * 6)[0],
                        "counts": dict(zip(("total", *service.CAMERA_STATUSES), rcounts.get(r.id, (0,) * 6)[1:],
                                           strict=True))} for r in regions]
        # Sites: filtered by region and by name (site or region), paged on the server.
        sstmt = select(Site, Region.name).join(Region, Region.id == Site.region_id)
        if actor.role == Role.site_rep:
            sstmt = sstmt.where(Site.id == actor.site_id)
        if region_id is not None:
            sstmt = sstmt.where(Site.region_id == region_id)
        if q:
            sstmt = sstmt.where(Site.name.ilike(f"%{q}%") | Region.name.ilike(f"%{q}%") |
                                Site.id.in_(select(Camera.site_id).where(Camera.name.ilike(f"%{q}%"))))
        stotal = s.execute(select(func.count()).select_from(sstmt.subquery())).scalar_one()
        spager = _pager(request, "spage", spage, stotal, SITES_PER_PAGE)
        site_page = s.execute(sstmt.order_by(Region.name, Site.name).offset((spager["page"] - 1) * SITES_PER_PAGE)
                              .limit(SITES_PER_PAGE)).all()
        site_ids = [site.id for site, _ in site_page]
        scounts = {row[0]: row[1:] for row in s.execute(
            select(Camera.site_id, *_status_counts()).where(Camera.site_id.in_(site_ids)).group_by(Camera.site_id))}
        site_online: dict[int, int] = {}
        for cid in online:
            site_online[cam_site.get(cid, -1)] = site_online.get(cam_site.get(cid, -1), 0) + 1
        site_rows = []
        for site, region_name in site_page:
            c = dict(zip(("total", *service.CAMERA_STATUSES), scounts.get(site.id, (0,) * 5), strict=True))
            on = site_online.get(site.id, 0)
            site_rows.append({"id": site.id, "name": site.name, "region": region_name, "counts": c,
                              "online": on, "offline": max(0, c["accepted"] - on) if health else None,
                              "contact": site.contact_name})
        # Cameras: the scoped service query, one page.
        total_probe = service.list_cameras(s, actor, None, region_id, status or None, q or None, 0, 1)[1]
        cpager = _pager(request, "page", page, total_probe, CAMERAS_PER_PAGE)
        cams, _ = service.list_cameras(s, actor, None, region_id, status or None, q or None,
                                       (cpager["page"] - 1) * CAMERAS_PER_PAGE, CAMERAS_PER_PAGE)
        names = dict(s.execute(select(Site.id, Site.name).where(Site.id.in_({c.site_id for c in cams}))).all())
        cam_rows = [{"id": c.id, "name": c.name, "site_id": c.site_id, "site": names.get(c.site_id, "?"),
                     "status": c.status, "health": health.get(c.id, {}).get("state")} for c in cams]
    totals = {"online": len(online), "recording": bool(health)}
    return render(request, "overview.html", actor, token, regions=region_rows, sites=site_rows, cameras=cam_rows,
                  spager=spager, cpager=cpager, q=q, region_id=region_id, status=status, totals=totals,
                  statuses=service.CAMERA_STATUSES, all_regions=regions)


# Camera wall -----------------------------------------------------------------------------------------------


@router.get("/wall", response_class=HTMLResponse)
def wall(request: Request, n: int = 4, page: int = Query(1, ge=1), site: str = Query("", alias="site_id")) \
        -> HTMLResponse:
    actor, _, token = _session_actor(request)
    site_id = _opt_int(site, "site")
    _need(actor, Perm.video_view)
    n = n if n in WALL_SIZES else 4
    with _ctx(request).db.session() as s:
        if site_id is not None:
            service.get_site(s, actor, site_id)
        total = service.list_cameras(s, actor, site_id, None, "accepted", None, 0, 1)[1]
        pager = _pager(request, "page", page, total, n)
        cams, _ = service.list_cameras(s, actor, site_id, None, "accepted", None, (pager["page"] - 1) * n, n)
        tiles = [{"id": c.id, "name": c.name, "site_id": c.site_id} for c in cams]
        sites = service.list_sites(s, actor)
        site_opts = [{"id": x.id, "name": x.name} for x in sites]
    cols = {1: 1, 4: 2, 9: 3, 16: 4}[n]
    return render(request, "wall.html", actor, token, tiles=tiles, n=n, cols=cols, pg=pager, sizes=WALL_SIZES,
                  site_id=site_id, sites=site_opts)


# Camera page -----------------------------------------------------------------------------------------------


def _probe_view(probe: Any) -> dict[str, Any] | None:
    if probe is None:
        return None
    return {"verdict": probe.verdict, "measured": probe.measured, "created_at": probe.created_at,
            "reasons": [{**r, **advice_for(r.get("code", ""))} for r in (probe.reasons or [])]}


@router.get("/cameras/{camera_id}", response_class=HTMLResponse)
def camera_page(request: Request, camera_id: int) -> HTMLResponse:
    actor, _, token = _session_actor(request)
    _need(actor, Perm.registry_read)
    with _ctx(request).db.session() as s:
        cam = service.get_camera(s, actor, camera_id)  # NotFound for other sites' cameras (site reps)
        site = s.get(Site, cam.site_id)
        camera = {"id": cam.id, "name": cam.name, "url": redact(cam.url), "status": cam.status, "site_id": cam.site_id,
                  "site": site.name if site else "?", "created_at": cam.created_at, "probed_at": cam.probed_at,
                  "has_credentials": cam.has_credentials}
        probe = _probe_view(service.latest_probe(s, cam.id))
    health = _recording_health(request).get(camera_id)
    return render(request, "camera.html", actor, token, camera=camera, probe=probe, health=health)


# Site page -------------------------------------------------------------------------------------------------


@router.get("/sites/{site_id}", response_class=HTMLResponse)
def site_page(request: Request, site_id: int, page: int = Query(1, ge=1)) -> HTMLResponse:
    actor, _, token = _session_actor(request)
    _need(actor, Perm.registry_read)
    health = _recording_health(request)
    with _ctx(request).db.session() as s:
        site = service.get_site(s, actor, site_id)
        region = s.get(Region, site.region_id)
        total = service.list_cameras(s, actor, site_id, None, None, None, 0, 1)[1]
        pager = _pager(request, "page", page, total, CAMERAS_PER_PAGE)
        cams, _ = service.list_cameras(s, actor, site_id, None, None, None, (pager["page"] - 1) * CAMERAS_PER_PAGE,
                                       CAMERAS_PER_PAGE)
        info = {"id": site.id, "name": site.name, "region": region.name if region else "?",
                "region_id": site.region_id, "contact_name": site.contact_name,
                "contact_email": site.contact_email, "contact_phone": site.contact_phone}
        cam_rows = [{"id": c.id, "name": c.name, "status": c.status, "health": health.get(c.id, {}).get("state")}
                    for c in cams]
    return render(request, "site.html", actor, token, site=info, cameras=cam_rows, pg=pager)


# Onboarding wizard and its probe jobs ----------------------------------------------------------------------


@router.get("/onboard", response_class=HTMLResponse)
def onboard(request: Request, camera_id: int | None = None) -> HTMLResponse:
    actor, _, token = _session_actor(request)
    _need(actor, Perm.camera_write)
    with _ctx(request).db.session() as s:
        sites = [{"id": x.id, "name": x.name} for x in service.list_sites(s, actor)]
        existing = None
        if camera_id is not None:
            c = service.get_camera(s, actor, camera_id)
            existing = {"id": c.id, "name": c.name, "site_id": c.site_id}
    return render(request, "onboard.html", actor, token, sites=sites, existing=existing, advice=ADVICE,
                  probe_seconds=_ctx(request).settings.probe_seconds)


_JOBS: dict[str, dict[str, Any]] = {}
_JOBS_LOCK = threading.Lock()
_JOB_KEEP_S = 3600.0


def _api_actor(request: Request) -> Actor:
    try:
        return _session_actor(request)[0]
    except LoginRequired:
        raise PageError(401, "Sign in first", "Your session has expired or was revoked; sign in again.") from None


@router.post("/web/api/probe-jobs")
async def start_probe(request: Request) -> JSONResponse:
    """Start probing one camera in the background; the wizard polls the job for live progress.

    CSRF-checked by the middleware (unsafe method under /web/api/). The probe itself is
    ``registry.onboarding.probe_cameras``: scoped, stored and audited exactly as ``POST /api/cameras/{id}/probe``.
    """
    from civicam.registry.onboarding import probe_cameras

    actor = _api_actor(request)
    if not allows(actor.role, Perm.camera_write):
        return JSONResponse({"detail": f"Your role ({actor.role}) may not probe cameras."}, status_code=403)
    try:
        body = await request.json()
        camera_id = int(body["camera_id"])
    except Exception:  # noqa: BLE001
        return JSONResponse({"detail": "Send {\"camera_id\": <id>}."}, status_code=400)
    ctx = _ctx(request)
    with ctx.db.session() as s:
        try:
            cam = service.get_camera(s, actor, camera_id)
        except service.NotFound as exc:
            return JSONResponse({"detail": redact(str(exc))}, status_code=404)
        if cam.status == "disabled":
            return JSONResponse({"detail": f"Camera {camera_id} is disabled; enable it first."}, status_code=400)
    job_id = secrets.token_urlsafe(12)
    job: dict[str, Any] = {"id": job_id, "camera_id": camera_id, "user_id": actor.user_id, "state": "running",
                           "started": time.monotonic(), "seconds": ctx.settings.probe_seconds,
                           "timeout_s": ctx.settings.probe_timeout_s, "result": None, "error": None}
    now = time.monotonic()
    with _JOBS_LOCK:
        for key in [k for k, j in _JOBS.items() if now - j["started"] > _JOB_KEEP_S]:
            del _JOBS[key]
        _JOBS[job_id] = job

    def work() -> None:
        state = "done"
        try:
            result = probe_cameras(ctx, actor, [camera_id])[camera_id].to_dict()
            result["reasons"] = [{**r, **advice_for(r.get("code", ""))} for r in result.get("reasons", [])]
            job["result"] = result
        except Exception as exc:  # noqa: BLE001 — shown to the user as the probe's failure
            job["error"] = redact(str(exc)) or type(exc).__name__
            state = "failed"
        job["elapsed"] = time.monotonic() - job["started"]
        job["state"] = state  # last: pollers see a finished job only once it is complete

    threading.Thread(target=work, name=f"web-probe-{camera_id}", daemon=True).start()
    return JSONResponse(_job_public(job), status_code=202)


def _job_public(job: dict[str, Any]) -> dict[str, Any]:
    elapsed = float(job.get("elapsed") or 0.0) if job["state"] != "running" else time.monotonic() - job["started"]
    return {"id": job["id"], "camera_id": job["camera_id"], "state": job["state"], "elapsed_s": round(elapsed, 1),
            "expected_s": job["seconds"], "timeout_s": job["timeout_s"], "result": job["result"],
            "error": job["error"]}


@router.get("/web/api/probe-jobs/{job_id}")
def probe_job(request: Request, job_id: str) -> JSONResponse:
    actor = _api_actor(request)
    job = _JOBS.get(job_id)
    if job is None or job["user_id"] != actor.user_id:
        return JSONResponse({"detail": "No such probe job (it may have expired)."}, status_code=404)
    return JSONResponse(_job_public(job))


# Alerts, audit, users --------------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request) -> HTMLResponse:
    actor, _, token = _session_actor(request)
    _need(actor, Perm.analytics_read)
    with _ctx(request).db.session() as s:
        sites = [{"id": x.id, "name": x.name, "region_id": x.region_id} for x in service.list_sites(s, actor)]
        regions = [{"id": r.id, "name": r.name} for r in service.list_regions(s, actor)]
    return render(request, "alerts.html", actor, token, sites=sites, regions=regions)


def _parse_time(value: str, what: str) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise PageError(400, "Bad date", f"'{value}' is not a date/time for '{what}' (use YYYY-MM-DDTHH:MM).") \
            from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, q: str = Query("", max_length=200), action: str = Query("", max_length=64),
          since: str = "", until: str = "", page: int = Query(1, ge=1)) -> HTMLResponse:
    actor, _, token = _session_actor(request)
    _need(actor, Perm.audit_read)
    from civicam.api.routers.audit import search  # the API's own query, so page and API never disagree

    t0, t1 = _parse_time(since, "from"), _parse_time(until, "to")
    with _ctx(request).db.session() as s:
        total = _audit_count(s, q, action, t0, t1)
        pager = _pager(request, "page", page, total, AUDIT_PER_PAGE)
        events = search(actor, s, q or None, action or None, t0, t1, (pager["page"] - 1) * AUDIT_PER_PAGE,
                        AUDIT_PER_PAGE)
        rows = [{"id": e.id, "ts": e.ts, "actor": e.actor, "action": e.action, "object": f"{e.object_type}"
                 + (f" {e.object_id}" if e.object_id else ""), "source": e.source, "detail": e.detail,
                 "hash": e.hash[:12]} for e in events]
        count, problems = verify_for_view(s, _ctx(request).settings)  # from the last signed checkpoint
        actions = sorted(s.execute(select(AuditEvent.action).distinct()).scalars())
    verification = {"ok": not problems, "entries": count, "problems": [p.message for p in problems[:20]]}
    return render(request, "audit.html", actor, token, events=rows, pg=pager, q=q, action=action, since=since,
                  until=until, verification=verification, actions=actions)


def _audit_count(s: Session, q: str, action: str, t0: datetime | None, t1: datetime | None) -> int:
    return int(s.execute(filtered(select(func.count()).select_from(AuditEvent), q, action, t0, t1)).scalar_one())


@router.get("/users", response_class=HTMLResponse)
def users(request: Request) -> HTMLResponse:
    actor, _, token = _session_actor(request)
    _need(actor, Perm.users_write)
    with _ctx(request).db.session() as s:
        rows = s.execute(select(User, Site.name).join(Site, Site.id == User.site_id, isouter=True)
                         .order_by(User.id)).all()
        people = [{"id": u.id, "username": u.username, "role": u.role, "site": site_name, "site_id": u.site_id,
                   "view_unblurred": u.view_unblurred, "is_active": u.is_active, "created_at": u.created_at}
                  for u, site_name in rows]
        sites = [{"id": x.id, "name": x.name} for x in service.list_sites(s, actor)]
    return render(request, "users.html", actor, token, users=people, sites=sites, roles=[r.value for r in Role])


# Mounting --------------------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Everything the dashboard needs on the app: pages, static files, CSRF check and HTML error pages."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static"), check_dir=True), name="static")
    app.add_middleware(CSRFMiddleware)

    async def login_required(request: Request, _exc: Exception) -> Response:
        if request.url.path.startswith("/web/api/"):
            return JSONResponse({"detail": "Sign in first."}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        if request.url.path.startswith("/web/api/"):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return _error_page(request, exc.status, exc.title, exc.message)

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/api/", "/web/api/")):
            return JSONResponse({"detail": redact(str(exc))}, status_code=404)
        return _error_page(request, 404, "Not found", f"{exc} It does not exist, or your role may not see it.")

    async def forbidden(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/api/", "/web/api/")):
            return JSONResponse({"detail": redact(str(exc))}, status_code=403)
        return _error_page(request, 403, "Not allowed", str(exc))

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageError, page_error)
    # The API maps these to JSON already; on pages they become readable HTML pages instead.
    app.add_exception_handler(service.NotFound, not_found)
    app.add_exception_handler(service.Forbidden, forbidden)


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    try:
        actor, _, token = _session_actor(request)
    except LoginRequired:
        actor, token = None, None
    return render(request, "error.html", actor, token, status_code=status, title=title, message=message, code=status)

