"""Onboarding: probe cameras concurrently, store each report, and accept or reject the camera."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from civicam.audit.log import Actor, record
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Probe
from civicam.domain.policy import Measurement, Reason
from civicam.domain.roles import Role
from civicam.registry import service
from civicam.registry.addresses import AddressNotAllowed, check_camera_url
from civicam.registry.probe import ProbeResult, ProbeTarget, probe_many

log = logging.getLogger(__name__)


def _targets(ctx: Context, actor: Actor, camera_ids: Sequence[int]) -> dict[int, ProbeTarget | ProbeResult]:
    """Everything the probes need, read from the database before any network work starts; a camera whose
    address the policy no longer allows (media directories, the region's camera networks) gets its
    rejection here, without any connection."""
    targets: dict[int, ProbeTarget | ProbeResult] = {}
    with ctx.db.session() as session:
        for cid in camera_ids:
            camera = service.get_camera(session, actor, cid)
            if camera.status == "disabled":
                raise service.RegistryError(f"Camera {cid} is disabled; enable it (set it to pending) first.")
            if camera.source == "edge":
                raise service.RegistryError(f"Camera {cid} is behind a site gateway; the gateway probes it.")
            policy = service.policy_for(session, ctx.settings.policy, camera)
            try:
                check_camera_url(camera.url, None, ctx.settings.registry.media_dirs, policy)
            except AddressNotAllowed as exc:
                targets[cid] = ProbeResult.of(Measurement(), [Reason(exc.code, str(exc))])
                continue
            user, pw = service.credentials(ctx.secrets, camera)
            targets[cid] = ProbeTarget(service.stream_url(ctx.secrets, camera), user, pw, policy)
    return targets


def _store(ctx: Context, actor: Actor, camera_id: int, result: ProbeResult, told: ProbeResult) -> None:
    """Store what the actor is told (``told``); the audit entry keeps the full finding for admins and auditors."""
    report = told.to_dict()
    with ctx.db.session() as session:
        camera = service.get_camera(session, actor, camera_id)
        old = camera.status
        camera.status = told.verdict
        camera.probed_at = utcnow()
        session.add(Probe(camera_id=camera_id, verdict=told.verdict, measured=report["measured"],
                          reasons=report["reasons"]))
        detail: dict[str, object] = {"verdict": told.verdict, "from": old, "reasons": [r.code for r in result.reasons]}
        if told is not result:
            detail["detail"] = [{"code": r.code, "message": r.message} for r in result.reasons]
        record(session, actor, "camera.probe", "camera", camera_id, detail)
    if told is not result:
        log.info("camera %s: probe by %s failed on the network path: %s", camera_id, actor.name,
                 "; ".join(f"{r.code}: {r.message}" for r in result.reasons))


def probe_cameras(
    ctx: Context,
    actor: Actor,
    camera_ids: Sequence[int],
    seconds: float | None = None,
    on_result: Callable[[int, ProbeResult], None] | None = None,
) -> dict[int, ProbeResult]:
    """Probe ``camera_ids`` at most ``probe_concurrency`` at a time; results keyed by camera id.

    Only admins learn why a probe failed on the network path (refused, timed out, not a stream): everyone
    else is told one ``unreachable``, at the probe's full deadline, so the probe cannot map which ports of
    which internal hosts are closed, filtered or open. The full finding is in the audit log.
    """
    planned = _targets(ctx, actor, camera_ids)
    s = ctx.settings
    opaque = actor.role != Role.admin
    told: dict[int, ProbeResult] = {}

    def finish(camera_id: int, result: ProbeResult) -> None:
        shown = result.opaque() if opaque else result
        _store(ctx, actor, camera_id, result, shown)
        told[camera_id] = shown
        if on_result is not None:
            on_result(camera_id, shown)

    for cid, planned_result in planned.items():
        if isinstance(planned_result, ProbeResult):
            finish(cid, planned_result)
    ids = [cid for cid, t in planned.items() if isinstance(t, ProbeTarget)]
    targets = [t for t in planned.values() if isinstance(t, ProbeTarget)]

    def store(index: int, result: ProbeResult) -> None:
        # Called in this thread as each probe finishes, so database writes never race.
        finish(ids[index], result)

    probe_many(targets, s.policy, s.probe_seconds if seconds is None else seconds, s.probe_timeout_s,
               s.probe_concurrency, store, uniform_failures=opaque)
    return {cid: told[cid] for cid in camera_ids}
