"""Onboarding end to end against the real RTSP server: the CLI and the API accept and reject real streams."""

from __future__ import annotations

import json

import pytest
from test_cli import Cli, cli  # noqa: F401  (fixture)

from support.hub import ADMIN_PASSWORD, Api
from support.rtsp import RtspServer
from support.rtsp_fixtures import SECURE_PASSWORD, SECURE_USER

pytestmark = pytest.mark.rtsp


def test_cli_probe_prints_the_report_and_exits_by_verdict(cli: Cli, rtsp_server: RtspServer) -> None:  # noqa: F811
    cli("init")
    cli("region", "add", "North")
    cli("site", "add", "--region", "North", "--name", "Mall", "--contact-name", "Ana", "--contact-email",
        "ana@mall.example")
    good = cli("camera", "add", "--site", "1", "--name", "Door", "--url", rtsp_server.url("/secure"),
               "--username", SECURE_USER, "--password-stdin", stdin=SECURE_PASSWORD + "\n").stdout.strip()
    small = cli("camera", "add", "--site", "1", "--name", "Old", "--url", rtsp_server.url("/small")).stdout.strip()
    report = json.loads(cli("camera", "probe", good, "--seconds", "4.5", "--json").stdout)
    assert report["verdict"] == "accepted" and report["reasons"] == []
    m = report["measured"]
    assert (m["width"], m["height"], m["codec"]) == (1280, 720, "h264")
    assert m["fps"] == pytest.approx(25, abs=0.5) and m["keyframe_interval_s"] == pytest.approx(2, abs=0.3)
    assert set(m) == {"width", "height", "fps", "codec", "bitrate_kbps", "keyframe_interval_s"}
    rejected = json.loads(cli("camera", "probe", small, "--seconds", "2", "--json", code=1).stdout)
    assert rejected["verdict"] == "rejected"
    assert [r["code"] for r in rejected["reasons"]] == ["resolution_too_low"]
    site = cli("camera", "probe", "--site", "1", "--seconds", "2", code=1)
    assert "accepted" in site.stdout and "resolution_too_low" in site.stdout
    statuses = {c["name"]: c["status"] for c in json.loads(cli("camera", "list", "--json").stdout)}
    assert statuses == {"Door": "accepted", "Old": "rejected"}
    assert SECURE_PASSWORD not in cli("audit", "list", "--limit", "50").stdout


def test_api_probe_applies_the_region_policy(sqlite_api: Api, rtsp_server: RtspServer) -> None:
    c, admin = sqlite_api.client, sqlite_api.login("admin", ADMIN_PASSWORD)
    lenient = c.post("/api/regions", json={"name": "Legacy", "policy": {"min_width": 640, "min_height": 480}},
                     headers=admin).json()["id"]
    strict = c.post("/api/regions", json={"name": "Strict"}, headers=admin).json()["id"]
    assert c.post("/api/regions", json={"name": "Bad", "policy": {"min_widht": 1}}, headers=admin).status_code == 400
    cams = {}
    for region in (lenient, strict):
        site = c.post("/api/sites", json={"region_id": region, "name": "S", "contact_name": "A",
                                          "contact_email": "a@b.example"}, headers=admin).json()["id"]
        cams[region] = c.post("/api/cameras", json={"site_id": site, "name": "Cam", "url": rtsp_server.url("/small")},
                              headers=admin).json()["id"]
    ok = c.post(f"/api/cameras/{cams[lenient]}/probe", json={"seconds": 2}, headers=admin).json()
    no = c.post(f"/api/cameras/{cams[strict]}/probe", json={"seconds": 2}, headers=admin).json()
    assert ok["verdict"] == "accepted", ok
    assert no["verdict"] == "rejected" and [r["code"] for r in no["reasons"]] == ["resolution_too_low"]
    cam = c.get(f"/api/cameras/{cams[strict]}", headers=admin).json()
    assert cam["status"] == "rejected" and cam["last_probe"]["reasons"][0]["code"] == "resolution_too_low"
    operator = sqlite_api.user("op", "operator")
    assert c.post(f"/api/cameras/{cams[strict]}/probe", headers=operator).status_code == 403
