"""The onboarding wizard and its probe jobs (run by ``civicam.registry.probe_jobs``, polled by the page)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from civicam.api.state import shared
from civicam.audit.log import Actor
from civicam.context import Context
from civicam.domain.roles import Perm, allows
from civicam.domain.urls import redact
from civicam.registry import service
from civicam.registry.probe_jobs import ProbeJobs, ProbeJobsFull
from civicam.web.advice import ADVICE, advice_for
from civicam.web.pages import LoginRequired, PageError, need, page_ctx, render, session_actor

router = APIRouter(include_in_schema=False)


@router.get("/onboard", response_class=HTMLResponse)
def onboard(request: Request, camera_id: int | None = None) -> HTMLResponse:
    actor, _, token = session_actor(request)
    need(actor, Perm.camera_write)
    with page_ctx(request).db.session() as s:
        sites = [{"id": x.id, "name": x.name} for x in service.list_sites(s, actor)]
        existing = None
        if camera_id is not None:
            c = service.get_camera(s, actor, camera_id)
            existing = {"id": c.id, "name": c.name, "site_id": c.site_id}
    return render(request, "onboard.html", actor, token, sites=sites, existing=existing, advice=ADVICE,
                  probe_seconds=page_ctx(request).settings.probe_seconds)


def _api_actor(request: Request) -> Actor:
    try:
        return session_actor(request)[0]
    except LoginRequired:
        raise PageError(401, "Sign in first", "Your session has expired or was revoked; sign in again.") from None


def probe_jobs(request: Request) -> ProbeJobs:
    """The app's probe job runner, made on first use; the app's lifespan closes it."""
    ctx = page_ctx(request)

    def probe(actor: Actor, camera_id: int) -> dict[str, Any]:
        from civicam.registry.onboarding import probe_cameras

        result = probe_cameras(ctx, actor, [camera_id])[camera_id].to_dict()
        result["reasons"] = [{**r, **advice_for(r.get("code", ""))} for r in result.get("reasons", [])]
        return result

    return shared(request, "probe_jobs", lambda: _make_jobs(ctx, probe))


def _make_jobs(ctx: Context, probe: Any) -> ProbeJobs:
    workers = min(ctx.settings.probe_concurrency, 8)
    return ProbeJobs(probe, logging.getLogger("civicam.web.probe_jobs"), workers=workers,
                     max_pending=max(32, workers))


@router.post("/web/api/probe-jobs")
async def start_probe(request: Request) -> JSONResponse:
    """Start probing one camera in the background; the wizard polls the job for live progress.

    CSRF-checked by the middleware (unsafe method under /web/api/). The probe itself is
    ``registry.onboarding.probe_cameras``: scoped, stored and audited exactly as ``POST /api/cameras/{id}/probe``.
    """
    actor = _api_actor(request)
    if not allows(actor.role, Perm.camera_write):
        return JSONResponse({"detail": f"Your role ({actor.role}) may not probe cameras."}, status_code=403)
    try:
        body = await request.json()
        camera_id = int(body["camera_id"])
    except Exception:  # noqa: BLE001
        return JSONResponse({"detail": "Send {\"camera_id\": <id>}."}, status_code=400)
    ctx = page_ctx(request)
    with ctx.db.session() as s:
        try:
            cam = service.get_camera(s, actor, camera_id)
        except service.NotFound as exc:
            return JSONResponse({"detail": redact(str(exc))}, status_code=404)
        if cam.status == "disabled":
            return JSONResponse({"detail": f"Camera {camera_id} is disabled; enable it first."}, status_code=400)
    try:
        job = probe_jobs(request).submit(actor, camera_id, ctx.settings.probe_seconds, ctx.settings.probe_timeout_s)
    except ProbeJobsFull as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(job.public(job.started), status_code=202)


@router.get("/web/api/probe-jobs/{job_id}")
def probe_job(request: Request, job_id: str) -> JSONResponse:
    actor = _api_actor(request)
    jobs: ProbeJobs | None = getattr(request.app.state, "probe_jobs", None)
    job = jobs.get(job_id, actor.user_id) if jobs is not None else None
    if job is None:
        return JSONResponse({"detail": "No such probe job (it may have expired)."}, status_code=404)
    return JSONResponse(job.public(jobs.clock() if jobs else 0.0))
