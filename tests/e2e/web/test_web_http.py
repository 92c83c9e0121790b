"""The dashboard's server side over HTTP (no browser): session cookie, CSRF, role scoping, paging at scale."""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import insert, select

from civicam.audit.log import Actor
from civicam.db.base import utcnow
from civicam.db.models import AuditEvent, Camera, Token
from civicam.registry import service

ADMIN_PASSWORD = "Adm1n-test-pass"  # tests/conftest.py's admin (its module name clashes with this folder's)
Api = Any

SETUP = Actor(name="setup", source="pytest")


def _sites(api: Api) -> tuple[int, int, int]:
    with api.ctx.db.session() as s:
        region = service.add_region(s, SETUP, "North")
        a = service.add_site(s, SETUP, region, "Mall", "Ann", "ann@mall.example")
        b = service.add_site(s, SETUP, region, "Depot", "Bob", "bob@depot.example")
        cam_b = service.add_camera(s, SETUP, api.ctx.secrets, b.id, "Gate", "rtsp://192.0.2.1/gate")
        return a.id, b.id, cam_b.id


def _login(api: Api, username: str, password: str) -> str:
    r = api.client.post("/login", data={"username": username, "password": password, "next": "/"},
                        follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"]


def _csrf(api: Api, path: str = "/") -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', api.client.get(path).text)
    assert match
    return match.group(1)


def test_sign_in_sets_a_strict_httponly_session_cookie_and_sign_out_revokes_it(sqlite_api: Api) -> None:
    api = sqlite_api
    r = api.client.get("/audit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faudit"
    r = api.client.post("/login", data={"username": "admin", "password": "nope"})
    assert r.status_code == 401 and "Wrong username or password." in r.text
    cookie = _login(api, "admin", ADMIN_PASSWORD)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and f"Max-Age={api.ctx.settings.token_ttl_s}" in cookie
    assert api.client.get("/api/auth/me").json()["username"] == "admin"  # the API accepts the same session
    csrf = _csrf(api)
    assert api.client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    r = api.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    with api.ctx.db.session() as s:
        assert all(t.revoked for t in s.execute(select(Token)).scalars())
        actions = [e.action for e in s.execute(select(AuditEvent)).scalars()]
    assert {"auth.login_failed", "auth.login", "auth.logout"} <= set(actions)


def test_cookie_mutations_need_the_csrf_token_and_the_same_origin(sqlite_api: Api) -> None:
    api = sqlite_api
    _login(api, "admin", ADMIN_PASSWORD)
    body = {"username": "op1", "password": "Op-passw0rd-123", "role": "operator"}
    assert api.client.post("/api/users", json=body).status_code == 403
    csrf = _csrf(api)
    evil = api.client.post("/api/users", json=body, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert api.client.post("/api/users", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    # Bearer clients carry no ambient credential and are not asked for one.
    api.client.cookies.clear()
    bearer = api.login("admin", ADMIN_PASSWORD)
    body2 = {**body, "username": "op2"}
    assert api.client.post("/api/users", json=body2, headers=bearer).status_code == 201


def test_site_rep_pages_show_only_their_site(sqlite_api: Api) -> None:
    api = sqlite_api
    site_a, _, cam_b = _sites(api)
    api.user("rep", "site_rep", site_a)
    api.client.cookies.clear()
    _login(api, "rep", "rep-Passw0rd!")
    overview = api.client.get("/").text
    assert "Mall" in overview and "Depot" not in overview
    r = api.client.get(f"/cameras/{cam_b}")
    assert r.status_code == 404 and "not found" in r.text and "text/html" in r.headers["content-type"]
    assert api.client.get("/users").status_code == 403
    assert api.client.get("/audit").status_code == 403
    assert api.client.get(f"/api/cameras/{cam_b}").status_code == 404  # the API's answer is unchanged (JSON)


def test_overview_pages_ten_thousand_cameras_on_the_server(sqlite_api: Api) -> None:
    api = sqlite_api
    site_a, _, _ = _sites(api)
    with api.ctx.db.session() as s:
        s.execute(insert(Camera), [{"site_id": site_a, "name": f"cam-{i:05d}", "url": f"rtsp://192.0.2.1/{i}",
                                    "status": ("pending", "accepted", "rejected")[i % 3], "created_at": utcnow()}
                                   for i in range(10_000)])
    _login(api, "admin", ADMIN_PASSWORD)
    t0 = time.monotonic()
    r = api.client.get("/")
    elapsed = time.monotonic() - t0
    assert r.status_code == 200 and elapsed < 3.0, elapsed
    assert "1–50 of 10001" in r.text and "page 1 of 201" in r.text
    assert r.text.count('href="/cameras/') == 50
    r = api.client.get("/?page=201&status=accepted&q=cam-0")
    assert r.status_code == 200 and "page" in r.text
    assert api.client.get("/?region_id=&status=").status_code == 200  # empty filters from the form mean "any"


def test_wizard_advice_covers_every_reason_code(sqlite_api: Api) -> None:
    api = sqlite_api
    _sites(api)
    _login(api, "admin", ADMIN_PASSWORD)
    page = api.client.get("/onboard").text
    for code in ("resolution_too_low", "fps_out_of_range", "unsupported_codec", "default_credentials",
                 "no_auth_required", "auth_failed", "unreachable", "no_video", "timeout"):
        assert f'id="advice-{code}"' in page


def test_only_view_unblurred_users_get_the_unblur_control(sqlite_api: Api) -> None:
    api = sqlite_api
    site_a, _, _ = _sites(api)
    with api.ctx.db.session() as s:
        cam = service.add_camera(s, SETUP, api.ctx.secrets, site_a, "Door", "rtsp://192.0.2.1/door")
        cam_id = cam.id
    api.user("plain", "operator")
    api.user("trusted", "operator", view_unblurred=True)
    for user, expected in (("plain", False), ("trusted", True)):
        api.client.cookies.clear()
        _login(api, user, f"{user}-Passw0rd!")
        page = api.client.get(f"/cameras/{cam_id}").text
        assert ('id="unblur-form"' in page) is expected
        assert 'data-testid="blur-badge"' in page  # everyone sees whether the video is blurred
