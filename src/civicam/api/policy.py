"""The one dependency every route runs first: ``civicam.domain.access`` applied to the request.

Mounted on the whole app (``FastAPI(dependencies=...)``), so every API route and dashboard page passes
through it before its own code: it finds the route's rule, the actor (bearer token or session cookie) and
the sites of the object the path names, and refuses with 401/403/404 as ``access.decide`` answers. The
routes' own checks (``require``, the scoped service reads) stay as a second line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from civicam.analytics.records import Alert, AlertRule
from civicam.api.deps import bearer_token
from civicam.auth.users import user_for_token
from civicam.context import Context
from civicam.db.models import Camera, Region, Site
from civicam.domain.access import Decision, Rule, Target, decide, rule_for
from civicam.registry.service import Forbidden, NotFound
from civicam.storage.models import Export, Hold


class NotSignedIn(Exception):
    """No valid session or token: the API answers 401, pages redirect to the sign-in page."""

    def __init__(self, message: str = "Sign in first.") -> None:
        super().__init__(message)


def route_template(request: Request) -> str | None:
    """The matched route's full path template (``/api/cameras/{camera_id}``), prefixes included."""
    route = request.scope.get("route")
    if route is None:
        return None
    paths: dict[int, str] | None = getattr(request.app.state, "route_templates", None)
    if paths is None or id(route) not in paths:
        # Routers are included lazily by FastAPI (their routes know only their own path, without the
        # prefixes they were included under): map each original route to its full path, again when a
        # route was added since. A route still not found gets no template, so no rule: refused.
        paths = {id(rc.original_route): rc.path for rc in iter_route_contexts(request.app.routes) if rc.path}
        request.app.state.route_templates = paths
    return paths.get(id(route))


# The path parameter that names each kind of object, and how a refusal names it.
_PARAM = {Target.camera: "camera_id", Target.site: "site_id", Target.region: "region_id",
          Target.export: "export_id", Target.hold: "hold_id", Target.alert: "alert_id",
          Target.alert_rule: "rule_id"}
_LABEL = {Target.camera: "Camera", Target.site: "Site", Target.region: "Region", Target.export: "Export",
          Target.hold: "Hold", Target.alert: "Alert", Target.alert_rule: "Alert rule"}
_AGGREGATE = {"camera": Target.camera, "site": Target.site, "region": Target.region}


def named_object(target: Target, params: Mapping[str, Any]) -> tuple[Target, int] | None:
    """(kind, id) of the object the path names; None when the path holds no well-formed id (the route's
    own validation then answers 422)."""
    if target is Target.aggregate:
        inner = _AGGREGATE.get(str(params.get("scope", "")))
        value = str(params.get("scope_id", ""))
        return (inner, int(value)) if inner is not None and value.isdigit() else None
    key = _PARAM.get(target)
    value = str(params.get(key, "")) if key else ""
    return (target, int(value)) if value.isdigit() else None


def _camera_sites(session: Session, camera_id: int) -> frozenset[int] | None:
    camera = session.get(Camera, camera_id)
    return frozenset({camera.site_id}) if camera is not None else None


def object_sites(session: Session, kind: Target, object_id: int) -> frozenset[int] | None:
    """The sites the object belongs to; None if there is no such object."""
    if kind is Target.camera:
        return _camera_sites(session, object_id)
    if kind is Target.site:
        return frozenset({object_id}) if session.get(Site, object_id) is not None else None
    if kind is Target.region:
        if session.get(Region, object_id) is None:
            return None
        return frozenset(session.execute(select(Site.id).where(Site.region_id == object_id)).scalars())
    if kind is Target.export:
        exp = session.get(Export, object_id)
        return _camera_sites(session, exp.camera_id) if exp is not None else None
    if kind is Target.hold:
        hold = session.get(Hold, object_id)
        return _camera_sites(session, hold.camera_id) if hold is not None else None
    if kind is Target.alert:
        alert = session.get(Alert, object_id)
        return frozenset({alert.site_id}) if alert is not None else None
    if kind is Target.alert_rule:
        rule = session.get(AlertRule, object_id)
        if rule is None:
            return None
        return frozenset({rule.site_id}) if rule.site_id is not None else frozenset()  # region-wide rule
    raise ValueError(f"no object lookup for {kind}")


def _refuse(decision: Decision, rule: Rule, role: str, named: tuple[Target, int] | None) -> None:
    if decision is Decision.login:
        raise NotSignedIn()
    if decision is Decision.forbidden:
        what = f" ({rule.perm})" if rule.perm else ""
        raise Forbidden(f"Your role ({role}) may not do this{what}.")
    # The same words whether the object is missing or out of reach, as the registry service says them.
    raise NotFound(f"{_LABEL[named[0]]} {named[1]} not found." if named else "Not found.")


async def enforce(request: Request) -> None:
    """Let the request through only if the policy allows it (see the module's docstring).

    Async so that a public route (health, a site gateway's uploads: they authenticate themselves) passes
    without a trip to the thread pool, which was a share of the hub's CPU per gateway upload; the rest
    reads the database there.
    """
    template = route_template(request)
    rule = rule_for(request.method, template) if template is not None else None
    if rule is None:
        # Deny by default: a route added without a rule in civicam.domain.access is open to nobody.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This route has no access rule; nobody may use it.")
    if rule.public:
        return
    await run_in_threadpool(_enforce_signed_in, request, rule)


def _enforce_signed_in(request: Request, rule: Rule) -> None:
    ctx: Context = request.app.state.ctx
    token = bearer_token(request)
    with ctx.db.session() as session:
        user = user_for_token(session, token) if token else None
        if user is None:
            raise NotSignedIn("Your session has expired or was revoked; sign in again." if token else
                              "Sign in first.")
        role, own_site = user.role, user.site_id
        named = named_object(rule.target, request.path_params) if rule.target not in (Target.none, Target.own) \
            else None
        if rule.target not in (Target.none, Target.own) and named is None:
            # A malformed id: only the permission is checked here; the route's validation refuses the rest.
            decision = decide(Rule(rule.perm), role, own_site)
        else:
            sites = object_sites(session, *named) if named is not None else None
            decision = decide(rule, role, own_site, sites)
    if decision is not Decision.allow:
        _refuse(decision, rule, role, named)
