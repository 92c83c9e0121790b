"""Every registered route, for every role and for anonymous callers, answers what the access policy says.

The walk starts from the app's own route table (``fastapi.routing.iter_route_contexts``), so a route added
without a rule in ``civicam.domain.access.ROUTES`` or without a request recipe here fails this test. Routes
that name an object are called with an object of the caller's own site and with one of another site; the
expected answer is ``access.decide`` given the sites the test itself put each object in:

* allow: 2xx/3xx (or the route's own documented answer for an empty hub, e.g. "No recording in that
  interval.", checked by its words so that it cannot be the policy's refusal);
* login: 401 from the API, a redirect to the sign-in page from pages;
* forbidden: 403; not_found: 404 with the same words as for a missing object.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from civicam.analytics.records import Alert, AlertRule
from civicam.auth.users import create_user, issue_token
from civicam.context import Context, open_context
from civicam.db.base import utcnow
from civicam.db.models import User
from civicam.domain.access import ROUTES, Decision, Target, decide, rule_for
from civicam.registry import service
from civicam.storage.models import Export, Hold
from civicam.web.csrf import csrf_token
from support.hub import ACTOR, ADMIN_PASSWORD, Api, api_for, make_settings

ROLES = ("admin", "operator", "site_rep", "auditor", None)  # None: not signed in
NOW = utcnow().replace(microsecond=0)
FROM, TO = (NOW - timedelta(hours=1)).isoformat(), NOW.isoformat()
_counter = itertools.count(1)


@dataclass
class Env:
    api: Api
    ctx: Context
    ids: dict[str, int]
    tokens: dict[str, str]
    tmp: Path
    role: str | None = None

    @property
    def user(self) -> str:
        return self.role or "-"

    def site(self, which: str) -> int:
        return self.ids[f"site_{which}"]

    def camera(self, which: str) -> int:
        return self.ids[f"camera_{which}"]


@dataclass
class Req:
    """One call; ``expect`` lists (status, words) the route itself may answer when the policy allows."""

    params: dict[str, Any] = field(default_factory=dict)      # path parameters
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None
    auth: str = "role"                                          # role, fresh (a throwaway token), none
    expect: tuple[tuple[int, str], ...] = ()


Recipe = Callable[[Env, str], Req]


def _n() -> int:
    return next(_counter)


def _export(env: Env, which: str) -> Req:
    path = env.tmp / f"export-{_n()}.mp4"
    path.write_bytes(b"\0" * 16)
    with env.ctx.db.session() as s:
        exp = Export(camera_id=env.camera(which), start=NOW - timedelta(minutes=5), end=NOW, reason="walk",
                     requested_by=env.user, status="done", path=str(path), bytes=16, unblurred=False)
        s.add(exp)
        s.flush()
        return Req(params={"export_id": exp.id})


def _hold(env: Env, which: str) -> Req:
    with env.ctx.db.session() as s:
        hold = Hold(camera_id=env.camera(which), start=NOW - timedelta(minutes=5), end=NOW, kind="evidence",
                    reason="walk", created_by="setup")
        s.add(hold)
        s.flush()
        return Req(params={"hold_id": hold.id})


def _alert(env: Env, which: str) -> Req:
    with env.ctx.db.session() as s:
        alert = Alert(rule_id=env.ids["rule_a"], site_id=env.site(which), window_start=NOW - timedelta(hours=1),
                      window_end=NOW, people=30, compliance=0.2, threshold=0.5)
        s.add(alert)
        s.flush()
        return Req(params={"alert_id": alert.id}, json={"note": "walk"})


def _rule(env: Env, which: str) -> Req:
    with env.ctx.db.session() as s:
        rule = AlertRule(name=f"r{_n()}", site_id=env.site(which), threshold=0.5, window_minutes=60, min_people=5)
        s.add(rule)
        s.flush()
        rid = rule.id
    return Req(params={"rule_id": rid}, json={"name": "walk", "site_id": env.site(which), "threshold": 0.4})


def _probe_job(env: Env, which: str) -> Req:
    # The job of the caller's own, made through the wizard's endpoint when the role may probe.
    job = "no-such-job"
    if env.role in ("admin", "site_rep"):
        r = env.api.client.post("/web/api/probe-jobs", json={"camera_id": env.camera("a")},
                                headers=_headers(env, "/web/api/probe-jobs", "POST", "role"))
        assert r.status_code == 202, r.text
        job = r.json()["id"]
    return Req(params={"job_id": job}, expect=((404, "No such probe job"),))


NO_RECORDING = ((404, "No recording in that interval."),)
GATEWAY_ONLY = ((401, "site gateway token"),)

RECIPES: dict[tuple[str, str], Recipe] = {
    ("GET", "/openapi.json"): lambda e, w: Req(),
    ("GET", "/docs"): lambda e, w: Req(),
    ("GET", "/docs/oauth2-redirect"): lambda e, w: Req(),
    ("GET", "/redoc"): lambda e, w: Req(),
    ("GET", "/healthz"): lambda e, w: Req(),
    ("GET", "/static"): lambda e, w: Req(params={"path": "css/app.css"}),
    ("POST", "/api/auth/token"): lambda e, w: Req(json={"username": "admin", "password": ADMIN_PASSWORD}),
    ("POST", "/api/auth/logout"): lambda e, w: Req(auth="fresh"),
    ("GET", "/api/auth/me"): lambda e, w: Req(),
    ("GET", "/api/regions"): lambda e, w: Req(),
    ("POST", "/api/regions"): lambda e, w: Req(json={"name": f"Region {_n()}"}),
    ("PUT", "/api/regions/{region_id}/policy"): lambda e, w: Req(params={"region_id": e.ids[f"region_{w}"]},
                                                                   json={}),
    ("GET", "/api/regions/{region_id}"): lambda e, w: Req(params={"region_id": e.ids[f"region_{w}"]}),
    ("GET", "/api/sites"): lambda e, w: Req(),
    ("POST", "/api/sites"): lambda e, w: Req(json={"region_id": e.ids["region_a"], "name": f"Site {_n()}",
                                                   "contact_name": "Walk", "contact_email": "walk@site.example"}),
    ("GET", "/api/sites/{site_id}"): lambda e, w: Req(params={"site_id": e.site(w)}),
    ("GET", "/api/cameras"): lambda e, w: Req(),
    ("POST", "/api/cameras"): lambda e, w: Req(json={"site_id": e.site("a"), "name": f"Cam {_n()}",
                                                     "url": "rtsp://127.0.0.1:9/walk"}),
    ("GET", "/api/cameras/{camera_id}"): lambda e, w: Req(params={"camera_id": e.camera(w)}),
    ("PATCH", "/api/cameras/{camera_id}"): lambda e, w: Req(params={"camera_id": e.camera(w)},
                                                            json={"status": "pending"}),
    ("POST", "/api/cameras/{camera_id}/probe"): lambda e, w: Req(params={"camera_id": e.camera(w)}),
    ("POST", "/api/sites/{site_id}/probe"): lambda e, w: Req(params={"site_id": e.site(w)}),
    ("GET", "/api/users"): lambda e, w: Req(),
    ("POST", "/api/users"): lambda e, w: Req(json={"username": f"walk{_n()}", "password": "Walk-passw0rd-123",
                                                   "role": "operator"}),
    ("GET", "/api/audit"): lambda e, w: Req(),
    ("GET", "/api/audit/verify"): lambda e, w: Req(),
    ("GET", "/api/cameras/{camera_id}/recordings"): lambda e, w: Req(params={"camera_id": e.camera(w)}),
    ("GET", "/api/cameras/{camera_id}/playback.m3u8"): lambda e, w: Req(
        params={"camera_id": e.camera(w)}, query={"from": FROM, "to": TO}, expect=NO_RECORDING),
    ("GET", "/api/cameras/{camera_id}/playback/media.m3u8"): lambda e, w: Req(
        params={"camera_id": e.camera(w)}, query={"from": FROM, "to": TO}),
    ("POST", "/api/cameras/{camera_id}/exports"): lambda e, w: Req(
        params={"camera_id": e.camera(w)}, json={"from": FROM, "to": TO, "reason": "walk"},
        expect=((400, "recording"),)),
    ("GET", "/api/exports/{export_id}"): _export,
    ("GET", "/api/exports/{export_id}/download"): _export,
    ("GET", "/api/cameras/{camera_id}/holds"): lambda e, w: Req(params={"camera_id": e.camera(w)}),
    ("POST", "/api/cameras/{camera_id}/holds"): lambda e, w: Req(
        params={"camera_id": e.camera(w)}, json={"from": FROM, "to": TO, "reason": "walk"}),
    ("DELETE", "/api/holds/{hold_id}"): _hold,
    ("GET", "/api/cameras/{camera_id}/live.m3u8"): lambda e, w: Req(
        params={"camera_id": e.camera(w)}, expect=((404, "Nothing recorded yet"),)),
    ("GET", "/api/cameras/{camera_id}/live/media.m3u8"): lambda e, w: Req(
        params={"camera_id": e.camera(w)}, expect=((404, "Nothing recorded yet"),)),
    ("GET", "/api/cameras/{camera_id}/live/parts/{name}"): lambda e, w: Req(
        params={"camera_id": e.camera(w), "name": "x.mp4"}, expect=((403, "unblurred live view only"),)),
    ("GET", "/api/cameras/{camera_id}/{mode}/segments/{segment_id}/{part}"): lambda e, w: Req(
        params={"camera_id": e.camera(w), "mode": "live", "segment_id": 1, "part": "init.mp4"},
        expect=((404, "No such segment."),)),
    ("GET", "/api/cameras/{camera_id}/live/blurred/{rendition}/{name}"): lambda e, w: Req(
        params={"camera_id": e.camera(w), "rendition": "wall", "name": "x.mp4"},
        expect=((404, "No such blurred part"),)),
    ("GET", "/api/recording/health"): lambda e, w: Req(),
    ("GET", "/api/cameras/{camera_id}/relay/media.m3u8"): lambda e, w: Req(
        params={"camera_id": e.camera(w)}, expect=((404, "Nobody was watching"),)),
    ("GET", "/api/cameras/{camera_id}/relay/segments/{seq}/{part}"): lambda e, w: Req(
        params={"camera_id": e.camera(w), "seq": 1, "part": "init.mp4"}, expect=((404, "segment is gone"),)),
    ("GET", "/api/cameras/{camera_id}/relay"): lambda e, w: Req(params={"camera_id": e.camera(w)}),
    ("POST", "/api/sites/{site_id}/token"): lambda e, w: Req(params={"site_id": e.site(w)},
                                                              json={"action": "rotate"}),
    ("GET", "/api/sites/{site_id}/gateway"): lambda e, w: Req(params={"site_id": e.site(w)}),
    # Gateway routes take no user session: with a user's token (or none) the route itself answers 401.
    ("POST", "/api/edge/cameras"): lambda e, w: Req(json={}, expect=GATEWAY_ONLY),
    ("POST", "/api/edge/uploads"): lambda e, w: Req(expect=GATEWAY_ONLY),
    ("OPTIONS", "/api/edge/uploads"): lambda e, w: Req(expect=GATEWAY_ONLY),
    ("POST", "/api/edge/batches"): lambda e, w: Req(expect=GATEWAY_ONLY),
    ("HEAD", "/api/edge/uploads/{upload_id}"): lambda e, w: Req(params={"upload_id": 1}, expect=((401, ""),)),
    ("PATCH", "/api/edge/uploads/{upload_id}"): lambda e, w: Req(params={"upload_id": 1}, expect=GATEWAY_ONLY),
    ("DELETE", "/api/edge/uploads/{upload_id}"): lambda e, w: Req(params={"upload_id": 1}, expect=GATEWAY_ONLY),
    ("POST", "/api/edge/gaps"): lambda e, w: Req(json={}, expect=GATEWAY_ONLY),
    ("POST", "/api/edge/health"): lambda e, w: Req(json={}, expect=GATEWAY_ONLY),
    ("GET", "/api/edge/relay-requests"): lambda e, w: Req(expect=GATEWAY_ONLY),
    ("POST", "/api/edge/relay/{camera_id}/segments"): lambda e, w: Req(params={"camera_id": e.camera(w)},
                                                                     expect=GATEWAY_ONLY),
    ("GET", "/api/analytics/{scope}/{scope_id}"): lambda e, w: Req(params={"scope": "site", "scope_id": e.site(w)}),
    ("GET", "/api/analytics/health"): lambda e, w: Req(),
    ("GET", "/api/alerts"): lambda e, w: Req(),
    ("POST", "/api/alerts/{alert_id}/ack"): _alert,
    ("GET", "/api/alert-rules"): lambda e, w: Req(),
    ("POST", "/api/alert-rules"): lambda e, w: Req(json={"name": "walk", "site_id": e.site("a"), "threshold": 0.5}),
    ("PUT", "/api/alert-rules/{rule_id}"): _rule,
    ("DELETE", "/api/alert-rules/{rule_id}"): _rule,
    ("GET", "/login"): lambda e, w: Req(),
    ("POST", "/login"): lambda e, w: Req(form={"username": "admin", "password": ADMIN_PASSWORD, "next": "/"},
                                         auth="none"),
    ("POST", "/logout"): lambda e, w: Req(auth="none"),
    ("GET", "/"): lambda e, w: Req(),
    ("GET", "/wall"): lambda e, w: Req(),
    ("GET", "/cameras/{camera_id}"): lambda e, w: Req(params={"camera_id": e.camera(w)}),
    ("GET", "/sites/{site_id}"): lambda e, w: Req(params={"site_id": e.site(w)}),
    ("GET", "/onboard"): lambda e, w: Req(),
    ("POST", "/web/api/probe-jobs"): lambda e, w: Req(json={"camera_id": e.camera("a")}),
    ("GET", "/web/api/probe-jobs/{job_id}"): _probe_job,
    ("GET", "/alerts"): lambda e, w: Req(),
    ("GET", "/audit"): lambda e, w: Req(),
    ("GET", "/users"): lambda e, w: Req(),
}

# Which sites the test put each object in: site A (region A) is the site representative's, site B
# (region B) another site's.
SITES = {"a": frozenset({"a"}), "b": frozenset({"b"})}


def _headers(env: Env, path: str, method: str, auth: str) -> dict[str, str]:
    if auth == "none" or env.role is None:
        return {}
    if auth == "fresh":
        with env.ctx.db.session() as s:
            user = s.execute(select(User).where(User.username == env.role)).scalar_one()
            token = issue_token(s, user, 600)
    else:
        token = env.tokens[env.role]
    if path.startswith("/api/"):
        return {"Authorization": f"Bearer {token}"}
    # Pages and the wizard's endpoints read the browser session; unsafe calls carry its CSRF token.
    headers = {"Cookie": f"civicam_session={token}"}
    if method != "GET":
        headers["X-CSRF-Token"] = csrf_token(token)
    return headers


def _routes(env: Env) -> list[tuple[str, str]]:
    found = []
    for rc in iter_route_contexts(env.api.client.app.routes):  # type: ignore[attr-defined]
        assert rc.path, rc
        for method in sorted(rc.methods or {"GET"}):  # a mount (static files) has no methods: GET
            if method != "HEAD" or "GET" not in (rc.methods or set()):  # HEAD of its own: a route
                found.append((method, rc.path))
    return found


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path) -> Iterator[Env]:
    ctx = open_context(make_settings(tmp_path / "data", sqlite_url, probe_seconds=0.3, probe_timeout_s=0.3),
                       create=True)
    for api in api_for(ctx):
        with ctx.db.session() as s:
            ra = service.add_region(s, ACTOR, "Region A")
            rb = service.add_region(s, ACTOR, "Region B")
            a = service.add_site(s, ACTOR, ra, "Site A", "Ann", "ann@a.example")
            b = service.add_site(s, ACTOR, rb, "Site B", "Bob", "bob@b.example")
            ca = service.add_camera(s, ACTOR, ctx.secrets, a.id, "Door A", "rtsp://127.0.0.1:9/a")
            cb = service.add_camera(s, ACTOR, ctx.secrets, b.id, "Door B", "rtsp://127.0.0.1:9/b")
            rule = AlertRule(name="setup", site_id=a.id, threshold=0.5, window_minutes=60, min_people=5)
            s.add(rule)
            s.flush()
            ids = {"region_a": ra.id, "region_b": rb.id, "site_a": a.id, "site_b": b.id, "camera_a": ca.id,
                   "camera_b": cb.id, "rule_a": rule.id}
            tokens = {}
            for role in ("operator", "site_rep", "auditor"):
                user = create_user(s, role, f"{role}-Walk-passw0rd", role, a.id if role == "site_rep" else None)
                tokens[role] = issue_token(s, user, 3600)
            admin = s.execute(select(User).where(User.username == "admin")).scalar_one()
            tokens["admin"] = issue_token(s, admin, 3600)
        yield Env(api, ctx, ids, tokens, tmp_path)
    ctx.close()


def _call(env: Env, method: str, path: str, req: Req) -> Any:
    url = path
    for key, value in req.params.items():
        url = url.replace("{" + key + "}", str(value))
    if path == "/static":
        url = f"/static/{req.params['path']}"
    assert "{" not in url, url
    headers = _headers(env, path, method, req.auth)
    env.api.client.cookies.clear()  # only the session this call names (POST /login sets one)
    kwargs: dict[str, Any] = {"headers": headers, "params": req.query, "follow_redirects": False}
    if req.json is not None:
        kwargs["json"] = req.json
    if req.form is not None:
        kwargs["data"] = req.form
    return env.api.client.request(method, url, **kwargs)


def _check(env: Env, method: str, path: str, which: str | None, expected: Decision, r: Any,
           own_answers: tuple[tuple[int, str], ...]) -> None:
    where = f"{method} {path} as {env.role or 'anonymous'}" + (f" on site {which.upper()}" if which else "")
    api = path.startswith(("/api/", "/web/api/"))
    detail = r.text
    if expected is Decision.allow:
        allowed = r.status_code < 400
        if not allowed:
            rule_words = [words for status, words in own_answers if status == r.status_code]
            allowed = any(words in detail for words in rule_words)
        assert allowed, f"{where}: policy allows, got {r.status_code} {detail[:300]}"
    elif expected is Decision.login:
        if api:
            assert r.status_code == 401, f"{where}: expected 401, got {r.status_code} {detail[:200]}"
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), \
                f"{where}: expected the sign-in redirect, got {r.status_code}"
    elif expected is Decision.forbidden:
        assert r.status_code == 403, f"{where}: expected 403, got {r.status_code} {detail[:200]}"
        assert "may not" in detail, f"{where}: 403 not from the policy: {detail[:200]}"
    else:
        assert r.status_code == 404, f"{where}: expected 404, got {r.status_code} {detail[:200]}"
        assert "not found" in detail, f"{where}: {detail[:200]}"


@pytest.mark.slow
def test_every_route_answers_what_the_policy_says_for_every_role(env: Env) -> None:
    routes = _routes(env)
    missing_rule = [r for r in routes if rule_for(*r) is None]
    missing_recipe = [r for r in routes if r not in RECIPES]
    assert not missing_rule, f"routes without an access rule in civicam.domain.access.ROUTES: {missing_rule}"
    assert not missing_recipe, f"routes without a request recipe in this test: {missing_recipe}"
    stale = set(ROUTES) - set(routes)
    assert not stale, f"rules for routes the app does not have: {sorted(stale)}"
    site_ids = {"a": env.site("a"), "b": env.site("b")}
    own = {"site_rep": env.site("a")}
    checked = 0
    answers: dict[Decision, int] = dict.fromkeys(Decision, 0)
    for role in ROLES:
        env.role = role
        for method, path in routes:
            rule = rule_for(method, path)
            assert rule is not None
            objects = ("a", "b") if rule.target not in (Target.none, Target.own) else (None,)
            for which in objects:
                req = RECIPES[(method, path)](env, which or "a")
                sites = {site_ids[x] for x in SITES[which]} if which else None
                if req.auth == "none":
                    expected = decide(rule, None, None, sites)
                else:
                    expected = decide(rule, role, own.get(role or ""), sites)
                r = _call(env, method, path, req)
                _check(env, method, path, which, expected, r, req.expect)
                checked += 1
                answers[expected] += 1
    print(f"\nroute policy walk: {len(routes)} routes x {len(ROLES)} roles (incl. anonymous), own and other "
          f"site objects: {checked} requests checked; " + ", ".join(f"{k}: {v}" for k, v in answers.items()))
    # Every kind of answer was exercised, and the site representative met the 404 wall on site B.
    assert all(answers.values()), answers


def test_a_route_without_a_rule_is_refused_to_everyone(env: Env) -> None:
    """Deny by default: a route added to the app with no rule is open to nobody, admins included."""
    from fastapi import APIRouter

    extra = APIRouter()

    @extra.get("/api/unlisted")
    def unlisted() -> dict[str, str]:
        return {"secret": "x"}

    env.api.client.app.include_router(extra)  # type: ignore[attr-defined]
    env.role = "admin"
    r = env.api.client.get("/api/unlisted", headers=_headers(env, "/api/unlisted", "GET", "role"))
    assert r.status_code == 403 and "no access rule" in r.json()["detail"]
    assert env.api.client.get("/api/unlisted").status_code == 403
