"""The onboarding wizard and its probe jobs (run by ``civicam.registry.probe_jobs``, polled by the page)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select

from civicam.api.state import shared
from civicam.audit.log import Actor
from civicam.context import Context
from civicam.db.models import Probe
from civicam.domain.roles import Perm, allows
from civicam.domain.urls import redact
from civicam.registry import job_ids, service
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
    if actor.user_id is None:
        return JSONResponse({"detail": "Sign in first."}, status_code=401)
    # A signed id naming camera, user and start: any process of the API tier can answer its polls.
    job_id = job_ids.job_id(ctx.secrets.derived_key(job_ids.PURPOSE),
                            job_ids.JobRef(camera_id, actor.user_id, datetime.now(UTC)))
    try:
        job = probe_jobs(request).submit(actor, camera_id, ctx.settings.probe_seconds, ctx.settings.probe_timeout_s,
                                         job_id=job_id)
    except ProbeJobsFull as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(job.public(job.started), status_code=202)


@router.get("/web/api/probe-jobs/{job_id}")
def probe_job(request: Request, job_id: str) -> JSONResponse:
    actor = _api_actor(request)
    jobs: ProbeJobs | None = getattr(request.app.state, "probe_jobs", None)
    job = jobs.get(job_id, actor.user_id) if jobs is not None else None
    if job is None:
        return _job_elsewhere(request, actor, job_id)
    return JSONResponse(job.public(jobs.clock() if jobs else 0.0))


JOB_KEEP_S = 600.0
NO_JOB = "No such probe job (it may have expired)."


def _job_elsewhere(request: Request, actor: Actor, job_id: str) -> JSONResponse:
    """A probe job another process of the API tier runs: its outcome from the stored probe reports."""
    ctx = page_ctx(request)
    ref = job_ids.parse(ctx.secrets.derived_key(job_ids.PURPOSE), job_id)
    now = datetime.now(UTC)
    if ref is None or ref.user_id != actor.user_id or (now - ref.started).total_seconds() > JOB_KEEP_S:
        return JSONResponse({"detail": NO_JOB}, status_code=404)
    with ctx.db.session() as s:
        try:
            service.get_camera(s, actor, ref.camera_id)
        except service.NotFound:
            return JSONResponse({"detail": NO_JOB}, status_code=404)
        row = s.execute(select(Probe).where(Probe.camera_id == ref.camera_id, Probe.created_at >= ref.started)
                        .order_by(Probe.id).limit(1)).scalar_one_or_none()
        report = None if row is None else {
            "verdict": row.verdict, "measured": row.measured,
            "reasons": [{**r, **advice_for(r.get("code", ""))} for r in row.reasons]}
        done_at = row.created_at if row is not None else now
    seconds, timeout_s = ctx.settings.probe_seconds, ctx.settings.probe_timeout_s
    state = "done" if report is not None else (
        "failed" if job_ids.lost(ref.started, now, seconds, timeout_s) else "running")
    return JSONResponse({"id": job_id, "camera_id": ref.camera_id, "state": state,
                         "elapsed_s": round((done_at - ref.started).total_seconds(), 1), "expected_s": seconds,
                         "timeout_s": timeout_s, "result": report,
                         "error": "The probe stopped without a report; probe again." if state == "failed" else None})
