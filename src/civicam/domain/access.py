"""The hub's one authorisation policy: every route, the permission it needs and the object it names.

Three tables, read together, answer "may this actor do this to this object":

* ``roles.GRANTS``: role x permission (what a role may do at all);
* ``roles.SCOPES``: role x object scope (which sites' objects a role reaches: all, or its own site);
* ``ROUTES`` here: route x (permission, object), for every API route and dashboard page.

``decide`` combines them, with no I/O: the caller looks up which sites the named object belongs to. The
API and the dashboard consult it through one dependency (``civicam.api.policy.enforce``) mounted on the
whole app, and ``tests/integration/test_route_policy.py`` walks the app's own route table against it, so
a route missing here is refused at run time (deny by default) and fails the suite.

Answers: ``allow``; ``login`` (no or expired session: 401, or the sign-in page); ``forbidden`` (403: the
role lacks the permission, which says nothing about any object); ``not_found`` (404: the object does not
exist *or* belongs to a site the actor may not reach; the two are never told apart).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from civicam.domain.roles import Perm, Role, SiteScope, allows, scope_of


class Target(StrEnum):
    """What object a route's path names, and so which sites the object scope is checked against."""

    none = "none"              # no object in the path: lists, creation (a body's site_id is checked by the service)
    camera = "camera"          # {camera_id}
    site = "site"              # {site_id}
    region = "region"          # {region_id}: reached when one of its sites is
    export = "export"          # {export_id}: its camera's site (and the route checks its owner)
    hold = "hold"              # {hold_id}: its camera's site
    alert = "alert"            # {alert_id}
    alert_rule = "alert_rule"  # {rule_id}: its site; a region-wide rule only by roles that reach every site
    aggregate = "aggregate"    # {scope}/{scope_id}: a camera, site or region as the path says
    own = "own"                # an object of the signed-in user only (a probe job): the route checks the owner


class Decision(StrEnum):
    allow = "allow"
    login = "login"
    forbidden = "forbidden"
    not_found = "not_found"


@dataclass(frozen=True)
class Rule:
    """What a route needs: ``public`` (no sign-in), else a signed-in user with ``perm`` (None: any signed-in
    user) reaching the ``target`` object."""

    perm: Perm | None = None
    target: Target = Target.none
    public: bool = False


PUBLIC = Rule(public=True)
SIGNED_IN = Rule()
# A site gateway is not a user: no session is asked for here; the route itself authenticates the site's
# gateway token (civicam.api.routers.edge.gateway_site) and scopes every camera id to that site.
GATEWAY = Rule(public=True)
P = Perm
T = Target

ROUTES: dict[tuple[str, str], Rule] = {
    # Framework and health: the schema says nothing a client cannot read from the code; health is a liveness probe.
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/static"): PUBLIC,  # the dashboard's CSS and JS
    # Sign-in
    ("POST", "/api/auth/token"): PUBLIC,
    ("POST", "/api/auth/logout"): SIGNED_IN,
    ("GET", "/api/auth/me"): SIGNED_IN,
    # Registry
    ("GET", "/api/regions"): Rule(P.registry_read),
    ("POST", "/api/regions"): Rule(P.registry_write),
    ("PUT", "/api/regions/{region_id}/policy"): Rule(P.registry_write, T.region),
    ("GET", "/api/regions/{region_id}"): Rule(P.registry_read, T.region),
    ("GET", "/api/sites"): Rule(P.registry_read),
    ("POST", "/api/sites"): Rule(P.registry_write),
    ("GET", "/api/sites/{site_id}"): Rule(P.registry_read, T.site),
    ("GET", "/api/cameras"): Rule(P.registry_read),
    ("POST", "/api/cameras"): Rule(P.camera_write),
    ("GET", "/api/cameras/{camera_id}"): Rule(P.registry_read, T.camera),
    ("PATCH", "/api/cameras/{camera_id}"): Rule(P.camera_write, T.camera),
    ("POST", "/api/cameras/{camera_id}/probe"): Rule(P.camera_write, T.camera),
    ("POST", "/api/sites/{site_id}/probe"): Rule(P.camera_write, T.site),
    # Users and audit
    ("GET", "/api/users"): Rule(P.users_write),
    ("POST", "/api/users"): Rule(P.users_write),
    ("GET", "/api/audit"): Rule(P.audit_read),
    ("GET", "/api/audit/verify"): Rule(P.audit_read),
    # Recordings, playback, exports, holds
    ("GET", "/api/cameras/{camera_id}/recordings"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/playback.m3u8"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/playback/media.m3u8"): Rule(P.video_view, T.camera),
    ("POST", "/api/cameras/{camera_id}/exports"): Rule(P.video_export, T.camera),
    ("GET", "/api/exports/{export_id}"): Rule(P.video_export, T.export),
    ("GET", "/api/exports/{export_id}/download"): Rule(P.video_export, T.export),
    ("GET", "/api/cameras/{camera_id}/holds"): Rule(P.video_view, T.camera),
    ("POST", "/api/cameras/{camera_id}/holds"): Rule(P.hold_write, T.camera),
    ("DELETE", "/api/holds/{hold_id}"): Rule(P.hold_write, T.hold),
    # Live view
    ("GET", "/api/cameras/{camera_id}/live.m3u8"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/live/media.m3u8"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/live/parts/{name}"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/live/blurred/{rendition}/{name}"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/{mode}/segments/{segment_id}/{part}"): Rule(P.video_view, T.camera),
    ("GET", "/api/recording/health"): Rule(P.registry_read),
    # View-only cameras: relayed on demand, viewed like any live view
    ("GET", "/api/cameras/{camera_id}/relay/media.m3u8"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/relay/segments/{seq}/{part}"): Rule(P.video_view, T.camera),
    ("GET", "/api/cameras/{camera_id}/relay"): Rule(P.video_view, T.camera),
    # Site gateways (civicam edge): enrolment by admins, everything else with the site's own token
    ("POST", "/api/sites/{site_id}/token"): Rule(P.registry_write, T.site),
    ("GET", "/api/sites/{site_id}/gateway"): Rule(P.registry_read, T.site),
    ("POST", "/api/edge/cameras"): GATEWAY,
    ("POST", "/api/edge/uploads"): GATEWAY,
    ("OPTIONS", "/api/edge/uploads"): GATEWAY,
    ("POST", "/api/edge/batches"): GATEWAY,
    ("HEAD", "/api/edge/uploads/{upload_id}"): GATEWAY,
    ("PATCH", "/api/edge/uploads/{upload_id}"): GATEWAY,
    ("DELETE", "/api/edge/uploads/{upload_id}"): GATEWAY,
    ("POST", "/api/edge/gaps"): GATEWAY,
    ("POST", "/api/edge/health"): GATEWAY,
    ("GET", "/api/edge/relay-requests"): GATEWAY,
    ("POST", "/api/edge/relay/{camera_id}/segments"): GATEWAY,
    # Analytics and alerts
    ("GET", "/api/analytics/{scope}/{scope_id}"): Rule(P.analytics_read, T.aggregate),
    ("GET", "/api/analytics/health"): Rule(P.analytics_read),
    ("GET", "/api/alerts"): Rule(P.analytics_read),
    ("POST", "/api/alerts/{alert_id}/ack"): Rule(P.alerts_write, T.alert),
    ("GET", "/api/alert-rules"): Rule(P.analytics_read),
    ("POST", "/api/alert-rules"): Rule(P.alerts_write),
    ("PUT", "/api/alert-rules/{rule_id}"): Rule(P.alerts_write, T.alert_rule),
    ("DELETE", "/api/alert-rules/{rule_id}"): Rule(P.alerts_write, T.alert_rule),
    # Dashboard pages
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,  # signs out whatever session the cookie names; without one it only redirects
    ("GET", "/"): Rule(P.registry_read),
    ("GET", "/wall"): Rule(P.video_view),
    ("GET", "/cameras/{camera_id}"): Rule(P.registry_read, T.camera),
    ("GET", "/sites/{site_id}"): Rule(P.registry_read, T.site),
    ("GET", "/onboard"): Rule(P.camera_write),
    ("POST", "/web/api/probe-jobs"): Rule(P.camera_write),
    ("GET", "/web/api/probe-jobs/{job_id}"): Rule(P.camera_write, T.own),
    ("GET", "/alerts"): Rule(P.analytics_read),
    ("GET", "/audit"): Rule(P.audit_read),
    ("GET", "/users"): Rule(P.users_write),
}


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route (its path template as registered, e.g. ``/api/cameras/{camera_id}``); None if the
    route is missing from the policy. HEAD is answered like GET unless it is a route of its own."""
    rule = ROUTES.get((method, path))
    return ROUTES.get(("GET", path)) if rule is None and method == "HEAD" else rule


def decide(rule: Rule | None, role: str | None, own_site_id: int | None,
           object_sites: Iterable[int] | None = None) -> Decision:
    """The policy's answer for an actor (``role`` None: not signed in) and the object the route names.

    ``object_sites``: the sites the object belongs to, None when it does not exist (ignored for routes
    whose target is ``none`` or ``own``). An empty set is an object of no single site (a region-wide rule),
    reached only by roles that reach every site.

    >>> decide(ROUTES[("GET", "/api/cameras/{camera_id}")], "site_rep", 1, {2})
    <Decision.not_found: 'not_found'>
    >>> decide(ROUTES[("GET", "/api/users")], "site_rep", 1)
    <Decision.forbidden: 'forbidden'>
    """
    if rule is None:
        return Decision.forbidden  # deny by default: a route nobody wrote a rule for is open to nobody
    if rule.public:
        return Decision.allow
    if role is None:
        return Decision.login
    if rule.perm is not None and not allows(role, rule.perm):
        return Decision.forbidden
    if rule.target in (Target.none, Target.own):
        return Decision.allow
    if object_sites is None:
        return Decision.not_found
    scope = scope_of(role)
    if scope is SiteScope.all_sites:
        return Decision.allow
    if scope is SiteScope.own_site and own_site_id is not None and own_site_id in set(object_sites):
        return Decision.allow
    return Decision.not_found


def matrix() -> list[tuple[str, str, str, str]]:
    """(method, path, permission, object) for every route, for docs/security.md."""
    return [(m, p, "public" if r.public else (r.perm.value if r.perm else "signed in"), r.target.value)
            for (m, p), r in sorted(ROUTES.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


__all__ = ["Decision", "ROUTES", "Role", "Rule", "Target", "decide", "matrix", "rule_for"]
