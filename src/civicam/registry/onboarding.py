"""Onboarding: probe cameras concurrently, store each report, and accept or reject the camera."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from civicam.audit.log import Actor, record
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Probe
from civicam.registry import service
from civicam.registry.probe import ProbeResult, ProbeTarget, probe_many


def _targets(ctx: Context, actor: Actor, camera_ids: Sequence[int]) -> list[ProbeTarget]:
    """Everything the probes need, read from the database before any network work starts."""
    targets: list[ProbeTarget] = []
    with ctx.db.session() as session:
        for cid in camera_ids:
            camera = service.get_camera(session, actor, cid)
            if camera.status == "disabled":
                raise service.RegistryError(f"Camera {cid} is disabled; enable it (set it to pending) first.")
            if camera.source == "edge":
                raise service.RegistryError(f"Camera {cid} is behind a site gateway; the gateway probes it.")
            user, pw = service.credentials(ctx.secrets, camera)
            targets.append(ProbeTarget(service.stream_url(ctx.secrets, camera), user, pw,
                                       service.policy_for(session, ctx.settings.policy, camera)))
    return targets


def _store(ctx: Context, actor: Actor, camera_id: int, result: ProbeResult) -> None:
    report = result.to_dict()
    with ctx.db.session() as session:
        camera = service.get_camera(session, actor, camera_id)
        old = camera.status
        camera.status = result.verdict
        camera.probed_at = utcnow()
        session.add(Probe(camera_id=camera_id, verdict=result.verdict, measured=report["measured"],
                          reasons=report["reasons"]))
        record(session, actor, "camera.probe", "camera", camera_id,
               {"verdict": result.verdict, "from": old, "reasons": [r.code for r in result.reasons]})


def probe_cameras(
    ctx: Context,
    actor: Actor,
    camera_ids: Sequence[int],
    seconds: float | None = None,
    on_result: Callable[[int, ProbeResult], None] | None = None,
) -> dict[int, ProbeResult]:
    """Probe ``camera_ids`` at most ``probe_concurrency`` at a time; results keyed by camera id."""
    targets = _targets(ctx, actor, camera_ids)
    s = ctx.settings

    def store(index: int, result: ProbeResult) -> None:
        # Called in this thread as each probe finishes, so database writes never race.
        _store(ctx, actor, camera_ids[index], result)
        if on_result is not None:
            on_result(camera_ids[index], result)

    results = probe_many(targets, s.policy, s.probe_seconds if seconds is None else seconds, s.probe_timeout_s,
                         s.probe_concurrency, store)
    return dict(zip(camera_ids, results, strict=True))
