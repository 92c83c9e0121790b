"""Onboarding: probe cameras concurrently, store each report, and accept or reject the camera."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from civicam.audit.log import Actor, record
from civicam.context import Context
from civicam.db.base import utcnow
from civicam.db.models import Probe
from civicam.domain.policy import Measurement, Policy, Reason
from civicam.registry import service
from civicam.registry.probe import ProbeResult, probe_stream


@dataclass(frozen=True)
class Target:
    """Everything one probe needs, read from the database before any network work starts."""

    camera_id: int
    url: str
    username: str | None
    password: str | None
    policy: Policy


def _targets(ctx: Context, actor: Actor, camera_ids: Sequence[int]) -> list[Target]:
    targets: list[Target] = []
    with ctx.db.session() as session:
        for cid in camera_ids:
            camera = service.get_camera(session, actor, cid)
            if camera.status == "disabled":
                raise service.RegistryError(f"Camera {cid} is disabled; enable it (set it to pending) first.")
            user, pw = service.credentials(ctx.secrets, camera)
            targets.append(Target(cid, camera.url, user, pw, service.policy_for(session, ctx.settings.policy, camera)))
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


def _crashed(exc: BaseException) -> ProbeResult:
    # A probe that raised is a finding about the camera, not a reason to stop probing the others.
    return ProbeResult(verdict="rejected", measured=Measurement(),
                       reasons=(Reason("unreachable", f"The probe failed: {type(exc).__name__}."),))


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
    read_s = s.probe_seconds if seconds is None else seconds
    results: dict[int, ProbeResult] = {}
    with ThreadPoolExecutor(max_workers=min(s.probe_concurrency, max(1, len(targets)))) as pool:
        futures = {
            pool.submit(probe_stream, t.url, t.username, t.password, t.policy, read_s, s.probe_timeout_s): t
            for t in targets
        }
        for fut in as_completed(futures):
            t = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 — see _crashed
                result = _crashed(exc)
            _store(ctx, actor, t.camera_id, result)
            results[t.camera_id] = result
            if on_result is not None:
                on_result(t.camera_id, result)
    return {cid: results[cid] for cid in camera_ids}
