"""CSRF and authentication read one cookie parse; every response carries the security headers; the
dashboard's templates have nothing the Content-Security-Policy would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from civicam.db.models import Region
from support.hub import ADMIN_PASSWORD, Api

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "civicam" / "web" / "templates"


def _session(api: Api) -> str:
    r = api.client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/"},
                        follow_redirects=False)
    assert r.status_code == 303, r.text
    token = api.client.cookies.get("civicam_session")
    assert token
    api.client.cookies.clear()  # from here on the Cookie header is written by hand
    return token


def _regions(api: Api) -> list[str]:
    with api.ctx.db.session() as s:
        return list(s.execute(select(Region.name)).scalars())


@pytest.mark.parametrize("cookie", [
    'x="a; civicam_session={t}',  # an unterminated quote ahead: SimpleCookie gave up, Starlette did not
    'civicam_session={t}; x="a',
    'a=b; x="a; c=d; civicam_session={t}',
    'x=\\"; civicam_session={t}',
])
def test_a_planted_cookie_does_not_hide_the_session_from_the_csrf_check(sqlite_api: Api, cookie: str) -> None:
    api = sqlite_api
    token = _session(api)
    header = {"Cookie": cookie.format(t=token)}
    # The request does authenticate with that header (the oracle: /api/auth/me through the auth dependency) ...
    me = api.client.get("/api/auth/me", headers=header)
    assert me.status_code == 200 and me.json()["username"] == "admin"
    # ... so a change without the CSRF token, and one from another origin, must be refused.
    r = api.client.post("/api/regions", json={"name": "Forged"}, headers=header)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = api.client.post("/api/regions", json={"name": "Forged"},
                        headers={**header, "Origin": "http://evil.example"})
    assert r.status_code == 403
    assert "Forged" not in _regions(api)


def test_a_duplicated_cookie_header_is_read_the_same_way_by_both(sqlite_api: Api) -> None:
    api = sqlite_api
    token = _session(api)
    # Two Cookie headers: authentication reads the first; the CSRF check must not read only the last.
    raw = [("cookie", f"civicam_session={token}"), ("cookie", "other=1")]
    me = api.client.get("/api/auth/me", headers=raw)
    assert me.status_code == 200
    r = api.client.post("/api/regions", json={"name": "Forged"}, headers=raw)
    assert r.status_code == 403 and "Forged" not in _regions(api)


def _assert_headers(headers: object, dashboard: bool = True) -> None:
    h = dict(headers)  # type: ignore[call-overload]
    csp = h["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    if dashboard:
        script = re.search(r"script-src ([^;]*)", csp)
        assert script is not None and script.group(1).strip() == "'self'"  # no inline script, no eval
        style = re.search(r"style-src ([^;]*)", csp)
        assert style is not None and "unsafe-inline" not in style.group(1)
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "same-origin"


def test_every_kind_of_response_carries_the_security_headers(sqlite_api: Api) -> None:
    api = sqlite_api
    c = api.client
    token = _session(api)
    cookie = {"Cookie": f"civicam_session={token}"}
    answers = {
        "login page": c.get("/login"),
        "redirect to sign-in": c.get("/audit", follow_redirects=False),
        "dashboard page": c.get("/", headers=cookie),
        "static file": c.get("/static/js/common.js"),
        "API JSON": c.get("/api/auth/me", headers=cookie),
        "API 401": c.get("/api/cameras"),
        "API 404": c.get("/api/cameras/999", headers=cookie),
        "CSRF 403": c.post("/api/regions", json={"name": "x"}, headers=cookie),
        "validation 422": c.post("/api/auth/token", json={}),
        "health": c.get("/healthz"),
        "openapi": c.get("/openapi.json"),
    }
    expected = {"API 401": 401, "API 404": 404, "CSRF 403": 403, "validation 422": 422, "redirect to sign-in": 303}
    for what, r in answers.items():
        assert r.status_code == expected.get(what, 200), (what, r.status_code, r.text[:200])
        _assert_headers(r.headers)
    docs = c.get("/docs")
    assert docs.status_code == 200
    _assert_headers(docs.headers, dashboard=False)  # FastAPI's own page: inline script, still unframeable


def test_the_templates_have_no_inline_script_style_or_handler() -> None:
    """What the dashboard CSP (script-src/style-src 'self') would block, looked for in every template."""
    found = []
    for path in sorted(TEMPLATES.glob("*.html")):
        text = path.read_text()
        for m in re.finditer(r"<script\b([^>]*)>", text):
            if "src=" not in m.group(1):
                found.append(f"{path.name}: inline <script>")
        found += [f"{path.name}: <style>" for _ in re.finditer(r"<style\b", text)]
        found += [f"{path.name}: style attribute" for _ in re.finditer(r"\sstyle\s*=", text)]
        found += [f"{path.name}: {m.group(1)} handler" for m in re.finditer(r"\s(on[a-z]+)\s*=", text)]
        found += [f"{path.name}: javascript: URL" for _ in re.finditer(r"javascript:", text, re.IGNORECASE)]
    assert found == []


def test_an_id_no_column_can_hold_is_a_clear_400_not_a_500(api: Api) -> None:
    """Found by schemathesis: ``PUT /api/regions/2914502708318556389376/policy`` answered 500."""
    admin = api.login("admin", ADMIN_PASSWORD)
    huge = 2914502708318556389376
    for method, path in (("PUT", f"/api/regions/{huge}/policy"), ("GET", f"/api/regions/{huge}"),
                         ("GET", f"/api/cameras/{huge}"), ("GET", f"/api/exports/{huge}")):
        r = api.client.request(method, path, json={} if method == "PUT" else None, headers=admin)
        assert r.status_code in (400, 404), (path, r.status_code, r.text)  # a clear "no", never a 500
        assert r.status_code == 404 or "out of range" in r.json()["detail"]
