"""The REST API end to end: sign-in, roles, site scoping, secrets never returned, audit for auditors."""

from __future__ import annotations

from civicam.api.deps import SESSION_COOKIE
from support.hub import ADMIN_PASSWORD, Api


def _setup(api: Api, admin: dict[str, str]) -> tuple[int, int, int]:
    c = api.client
    region = c.post("/api/regions", json={"name": "North"}, headers=admin).json()["id"]
    s1 = c.post("/api/sites", json={"region_id": region, "name": "Mall", "contact_name": "Ana",
                                    "contact_email": "ana@mall.example"}, headers=admin).json()["id"]
    s2 = c.post("/api/sites", json={"region_id": region, "name": "Station", "contact_name": "Bo",
                                    "contact_email": "bo@station.example", "contact_phone": "+1 555 0102"},
                headers=admin).json()["id"]
    return region, s1, s2


def test_sign_in_is_required_and_wrong_passwords_fail(api: Api) -> None:
    c = api.client
    assert c.get("/api/cameras").status_code == 401
    assert c.post("/api/auth/token", json={"username": "admin", "password": "wrong-password"}).status_code == 401
    admin = api.login("admin", ADMIN_PASSWORD)
    assert c.get("/api/auth/me", headers=admin).json()["role"] == "admin"
    assert c.post("/api/auth/logout", headers=admin).status_code == 204
    assert c.get("/api/auth/me", headers=admin).status_code == 401


def test_camera_secrets_never_come_back(api: Api) -> None:
    admin = api.login("admin", ADMIN_PASSWORD)
    _, site, _ = _setup(api, admin)
    r = api.client.post("/api/cameras", json={"site_id": site, "name": "Door", "url": "rtsp://127.0.0.1:1/door",
                                              "username": "viewer", "password": "Pa55-word-xyz"}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending" and body["has_credentials"] is True
    listing = api.client.get("/api/cameras", headers=admin).text
    assert "Pa55-word-xyz" not in r.text + listing and "viewer" not in r.text + listing


def test_query_credentials_never_come_back(sqlite_api: Api) -> None:
    api = sqlite_api
    admin = api.login("admin", ADMIN_PASSWORD)
    _, site, _ = _setup(api, admin)
    url = "http://127.0.0.1:1/videostream.cgi?usr=viewer&pwd=Pa55-query-xyz&resolution=32"
    r = api.client.post("/api/cameras", json={"site_id": site, "name": "Door", "url": url}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["url"] == "http://127.0.0.1:1/videostream.cgi?resolution=32"
    assert r.json()["has_credentials"] is True
    auditor = api.user("aud", "auditor")
    api.client.cookies.set(SESSION_COOKIE, admin["Authorization"].removeprefix("Bearer "))
    page = api.client.get(f"/cameras/{r.json()['id']}")
    api.client.cookies.clear()
    assert page.status_code == 200 and "videostream.cgi?resolution=32" in page.text
    shown = r.text + api.client.get("/api/cameras", headers=admin).text + api.client.get(
        "/api/audit", headers=auditor).text + page.text
    assert "Pa55-query-xyz" not in shown and "viewer" not in shown


def test_bad_input_gets_a_clear_error(api: Api) -> None:
    admin = api.login("admin", ADMIN_PASSWORD)
    _, site, _ = _setup(api, admin)
    r = api.client.post("/api/cameras", json={"site_id": site, "name": "X", "url": "ftp://x/y"}, headers=admin)
    assert r.status_code == 400 and "Unsupported scheme" in r.json()["detail"]
    r = api.client.post("/api/cameras", json={"site_id": 999, "name": "X", "url": "rtsp://127.0.0.1/y"},
                        headers=admin)
    assert r.status_code == 404
    r = api.client.post("/api/cameras", json={"site_id": site, "name": "X", "url": "rtsp://127.0.0.1/y",
                                              "extra": 1}, headers=admin)
    assert r.status_code == 422


def test_roles_and_site_scoping(api: Api) -> None:
    c = api.client
    admin = api.login("admin", ADMIN_PASSWORD)
    _, mall, station = _setup(api, admin)
    cam_station = c.post("/api/cameras", json={"site_id": station, "name": "Platform",
                                               "url": "rtsp://127.0.0.1/p"}, headers=admin).json()["id"]
    rep = api.user("mallrep", "site_rep", site_id=mall)
    operator = api.user("op", "operator")
    auditor = api.user("aud", "auditor")

    # A site representative manages their own site and sees nothing of another.
    r = c.post("/api/cameras", json={"site_id": mall, "name": "Door", "url": "rtsp://127.0.0.1/d"}, headers=rep)
    assert r.status_code == 201
    assert c.post("/api/cameras", json={"site_id": station, "name": "Sneaky", "url": "rtsp://127.0.0.1/s"},
                  headers=rep).status_code == 404
    assert c.get(f"/api/cameras/{cam_station}", headers=rep).status_code == 404
    assert [x["name"] for x in c.get("/api/cameras", headers=rep).json()["items"]] == ["Door"]
    assert [x["id"] for x in c.get("/api/sites", headers=rep).json()] == [mall]
    assert c.post("/api/regions", json={"name": "South"}, headers=rep).status_code == 403

    # Operators view but do not change the registry, users or the audit log.
    assert c.get("/api/cameras", headers=operator).json()["total"] == 2
    assert c.post("/api/cameras", json={"site_id": mall, "name": "Y", "url": "rtsp://127.0.0.1/y"},
                  headers=operator).status_code == 403
    assert c.get("/api/audit", headers=operator).status_code == 403
    assert c.post("/api/users", json={"username": "x", "password": "long-enough-1", "role": "admin"},
                  headers=operator).status_code == 403

    # Auditors read the log, which names who did what from where, and the chain verifies.
    events = c.get("/api/audit", params={"q": "camera.create"}, headers=auditor).json()
    assert {e["actor"] for e in events} == {"admin", "mallrep"}
    assert all(e["source"] for e in events)
    verdict = c.get("/api/audit/verify", headers=auditor).json()
    assert verdict["ok"] is True and verdict["entries"] >= 8


def test_admin_creates_users_with_rules(api: Api) -> None:
    c = api.client
    admin = api.login("admin", ADMIN_PASSWORD)
    _, mall, _ = _setup(api, admin)
    r = c.post("/api/users", json={"username": "rep2", "password": "short", "role": "site_rep", "site_id": mall},
               headers=admin)
    assert r.status_code == 400 and "at least" in r.json()["detail"]
    r = c.post("/api/users", json={"username": "rep2", "password": "long-enough-1", "role": "site_rep"},
               headers=admin)
    assert r.status_code == 400 and "site" in r.json()["detail"]
    r = c.post("/api/users", json={"username": "rep2", "password": "long-enough-1", "role": "site_rep",
                                   "site_id": mall}, headers=admin)
    assert r.status_code == 201 and "password" not in r.json()
    assert api.login("rep2", "long-enough-1")


def test_camera_list_is_paged_on_the_server(api: Api) -> None:
    admin = api.login("admin", ADMIN_PASSWORD)
    _, mall, _ = _setup(api, admin)
    for i in range(7):
        api.client.post("/api/cameras", json={"site_id": mall, "name": f"Cam {i}", "url": f"rtsp://127.0.0.1/{i}"},
                        headers=admin)
    page = api.client.get("/api/cameras", params={"limit": 3, "offset": 3}, headers=admin).json()
    assert page["total"] == 7 and [c["name"] for c in page["items"]] == ["Cam 3", "Cam 4", "Cam 5"]
    found = api.client.get("/api/cameras", params={"q": "cam 6"}, headers=admin).json()
    assert [c["name"] for c in found["items"]] == ["Cam 6"]
