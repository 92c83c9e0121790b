"""Aggregates, alert rules, alerts and webhook delivery, on SQLite and PostgreSQL, through the API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from civicam.analytics.aggregation import CameraEvent, add_events
from civicam.analytics.alerting import AlertService
from civicam.context import Context, open_context
from civicam.registry import service
from support.hub import ACTOR, ADMIN_PASSWORD, Api, api_for, make_settings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _registry(ctx: Context) -> dict[str, int]:
    with ctx.db.session() as s:
        r = service.add_region(s, ACTOR, "North")
        a = service.add_site(s, ACTOR, r, "Mall", "Ana", "ana@mall.example")
        b = service.add_site(s, ACTOR, r, "Station", "Bo", "bo@station.example")
        ids = {"region": r.id, "mall": a.id, "station": b.id}
        for name, site in (("mall-1", a.id), ("mall-2", a.id), ("station-1", b.id)):
            ids[name] = service.add_camera(s, ACTOR, ctx.secrets, site, name, f"rtsp://127.0.0.1/{name}").id
    return ids


def _people(camera: int, start: datetime, masked: int, unmasked: int, unknown: int = 0) -> list[CameraEvent]:
    labels = ["mask"] * masked + ["no_mask"] * unmasked + ["unknown"] * unknown
    return [CameraEvent(camera, start + timedelta(seconds=20 * i), lab, 0.9) for i, lab in enumerate(labels)]


def test_aggregates_per_camera_site_and_region(api: Api) -> None:
    ids = _registry(api.ctx)
    with api.ctx.db.session() as s:
        add_events(s, _people(ids["mall-1"], NOW - timedelta(minutes=50), 6, 2, 1))
        add_events(s, _people(ids["mall-2"], NOW - timedelta(minutes=20), 3, 3))
        add_events(s, _people(ids["station-1"], NOW - timedelta(minutes=10), 1, 0))
    with api.ctx.db.session() as s:  # a second batch into the same buckets adds up, never overwrites
        add_events(s, _people(ids["mall-1"], NOW - timedelta(minutes=50), 1, 0))
    admin = api.login("admin", ADMIN_PASSWORD)
    q = {"from": (NOW - timedelta(hours=2)).isoformat(), "to": NOW.isoformat(), "interval": "1h"}
    cam = api.client.get(f"/api/analytics/camera/{ids['mall-1']}", params=q, headers=admin).json()
    assert cam["total"]["people"] == 10 and cam["total"]["masked"] == 7 and cam["total"]["unknown"] == 1
    site = api.client.get(f"/api/analytics/site/{ids['mall']}", params=q, headers=admin).json()
    assert site["total"]["people"] == 16
    assert site["total"]["compliance"] == pytest.approx(10 / 15)
    region = api.client.get(f"/api/analytics/region/{ids['region']}", params=q, headers=admin).json()
    # The station's one person is a cell under the minimum size: left out, and the total says so.
    assert region["total"]["people"] == 16 and region["total"]["partial"] is True
    quarter = api.client.get(f"/api/analytics/site/{ids['mall']}", params={**q, "interval": "15m"},
                             headers=admin).json()
    assert sum(b["people"] for b in quarter["buckets"]) == 16 and len(quarter["buckets"]) >= 2
    rep = api.user("rep", "site_rep", site_id=ids["station"])
    assert api.client.get(f"/api/analytics/site/{ids['mall']}", headers=rep).status_code == 404
    assert api.client.get(f"/api/analytics/region/{ids['region']}", headers=rep).status_code == 404
    station = api.client.get(f"/api/analytics/site/{ids['station']}", params=q, headers=rep).json()["total"]
    assert station["suppressed"] is True and station["people"] is None and station["compliance"] is None


def _get(api: Api, headers: dict[str, str], scope: str, scope_id: int, interval: str) -> dict[str, Any]:
    q = {"from": (NOW - timedelta(hours=2)).isoformat(), "to": NOW.isoformat(), "interval": interval}
    r = api.client.get(f"/api/analytics/{scope}/{scope_id}", params=q, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


FIELDS = ("people", "masked", "unmasked", "unknown", "compliance")


def test_small_cells_are_suppressed_and_cannot_be_recovered_from_totals(sqlite_api: Api) -> None:
    api = sqlite_api
    ids = _registry(api.ctx)
    hour = NOW - timedelta(hours=1)  # 11:00
    with api.ctx.db.session() as s:
        add_events(s, _people(ids["mall-1"], hour, 1, 1))                            # 11:00, mall-1: 2 people
        add_events(s, _people(ids["mall-2"], hour, 6, 2))                            # 11:00, mall-2: 8
        add_events(s, _people(ids["mall-1"], hour + timedelta(minutes=15), 0, 1))    # 11:15, mall-1: 1 unmasked
        add_events(s, _people(ids["mall-1"], hour + timedelta(minutes=30), 4, 1))    # 11:30, mall-1: 5
    admin = api.login("admin", ADMIN_PASSWORD)
    cam = _get(api, admin, "camera", ids["mall-1"], "15m")
    assert cam["min_cell_size"] == 5
    by_start = {b["start"][11:16]: b for b in cam["buckets"]}
    for small in ("11:00", "11:15"):
        assert by_start[small]["suppressed"] is True and all(by_start[small][f] is None for f in FIELDS)
    assert {k: by_start["11:30"][k] for k in ("people", "masked", "unmasked", "suppressed", "partial")} == {
        "people": 5, "masked": 4, "unmasked": 1, "suppressed": False, "partial": False}
    assert cam["total"]["people"] == 5 and cam["total"]["partial"] is True
    # Site, by quarter and by hour: only publishable camera cells are summed, so site minus cameras, or
    # an hour minus its quarters, or one window's total minus another's, never gives a small cell back.
    site_q = _get(api, admin, "site", ids["mall"], "15m")
    site_h = _get(api, admin, "site", ids["mall"], "1h")
    assert [(b["start"][11:16], b["people"], b["partial"]) for b in site_q["buckets"]] == [
        ("11:00", 8, True), ("11:15", None, True), ("11:30", 5, False)]
    assert [(b["people"], b["unmasked"]) for b in site_h["buckets"]] == [(13, 3)]
    assert site_q["total"]["people"] == site_h["total"]["people"] == 13 == 8 + 5
    mall2 = _get(api, admin, "camera", ids["mall-2"], "1h")
    assert site_h["total"]["people"] - mall2["total"]["people"] - cam["total"]["people"] == 0
    region = _get(api, admin, "region", ids["region"], "1d")
    assert region["total"]["people"] == 13 and region["total"]["masked"] == 10


def test_alerts_see_the_true_counts_of_small_cells(sqlite_api: Api) -> None:
    import logging

    api = sqlite_api
    ids = _registry(api.ctx)
    admin = api.login("admin", ADMIN_PASSWORD)
    rule = api.client.post("/api/alert-rules", json={"name": "masks", "site_id": ids["mall"], "threshold": 0.8,
                                                     "window_minutes": 60, "min_people": 6}, headers=admin)
    assert rule.status_code == 201, rule.text
    with api.ctx.db.session() as s:  # two cameras of four people each: every cell is under k = 5
        add_events(s, _people(ids["mall-1"], NOW - timedelta(minutes=40), 1, 3))
        add_events(s, _people(ids["mall-2"], NOW - timedelta(minutes=40), 2, 2))
    site = _get(api, admin, "site", ids["mall"], "1h")
    assert site["total"]["suppressed"] is True
    svc = AlertService(api.ctx, logging.getLogger("test"), clock=lambda: NOW)
    opened = svc.run_once()
    assert len(opened) == 1
    alerts = api.client.get("/api/alerts", headers=admin).json()
    assert [(a["people"], a["compliance"]) for a in alerts] == [(8, pytest.approx(3 / 8))]


def test_the_minimum_cell_size_is_a_setting(tmp_path: Path, sqlite_url: str) -> None:
    ctx = open_context(make_settings(tmp_path / "data", sqlite_url, analytics={"min_cell_size": 1}), create=True)
    try:
        for api in api_for(ctx):
            ids = _registry(ctx)
            with ctx.db.session() as s:
                add_events(s, _people(ids["station-1"], NOW - timedelta(minutes=10), 1, 0))
            total = _get(api, api.login("admin", ADMIN_PASSWORD), "camera", ids["station-1"], "15m")["total"]
            assert (total["people"], total["suppressed"], total["partial"]) == (1, False, False)
    finally:
        ctx.close()


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    fail_first = 0

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Hook.fail_first > 0:
            Hook.fail_first -= 1
            self.send_response(503)
        else:
            Hook.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received, Hook.fail_first = [], 1
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_alert_opens_once_is_delivered_and_acknowledged(api: Api, webhook: str) -> None:
    import logging

    ids = _registry(api.ctx)
    admin = api.login("admin", ADMIN_PASSWORD)
    rule = api.client.post("/api/alert-rules", json={"name": "masks", "region_id": ids["region"], "threshold": 0.8,
                                                     "window_minutes": 60, "min_people": 10,
                                                     "webhook_url": webhook}, headers=admin)
    assert rule.status_code == 201, rule.text
    with api.ctx.db.session() as s:
        add_events(s, _people(ids["mall-1"], NOW - timedelta(minutes=40), 5, 7))    # mall: 5/12 masked
        add_events(s, _people(ids["station-1"], NOW - timedelta(minutes=40), 12, 1))  # station: fine
    svc = AlertService(api.ctx, logging.getLogger("test"), clock=lambda: NOW)
    assert len(svc.run_once()) == 1
    assert svc.run_once() == []  # still open: no duplicate
    alerts = api.client.get("/api/alerts", params={"state": "open"}, headers=admin).json()
    assert [(a["site_id"], a["people"], a["delivered"]) for a in alerts] == [(ids["mall"], 12, True)]
    assert alerts[0]["compliance"] == pytest.approx(5 / 12)
    assert len(Hook.received) == 1  # the first POST got 503 and was retried
    sent = Hook.received[0]
    assert sent["site"]["name"] == "Mall" and sent["people"] == 12
    assert set(sent) == {"type", "alert_id", "rule", "site", "window", "people", "compliance", "threshold",
                         "opened_at"}
    operator = api.user("op", "operator")
    acked = api.client.post(f"/api/alerts/{alerts[0]['id']}/ack", json={"note": "called the site"},
                            headers=operator).json()
    assert acked["state"] == "acknowledged" and acked["acknowledged_by"] == "op"
    auditor = api.user("aud", "auditor")
    actions = [e["action"] for e in api.client.get("/api/audit", headers=auditor).json()]
    assert "alert.open" in actions and "alert.acknowledge" in actions
    assert api.client.get("/api/audit/verify", headers=auditor).json()["ok"] is True


def test_rule_input_is_checked(api: Api) -> None:
    ids = _registry(api.ctx)
    admin = api.login("admin", ADMIN_PASSWORD)
    bad = api.client.post("/api/alert-rules", json={"name": "x", "site_id": ids["mall"], "region_id": ids["region"],
                                                    "threshold": 0.8}, headers=admin)
    assert bad.status_code == 400
    assert api.client.post("/api/alert-rules", json={"name": "x", "threshold": 1.5}, headers=admin).status_code == 422
    rep = api.user("rep", "site_rep", site_id=ids["mall"])
    assert api.client.post("/api/alert-rules", json={"name": "x", "threshold": 0.5}, headers=rep).status_code == 403
    ok = api.client.post("/api/alert-rules", json={"name": "mine", "site_id": ids["mall"], "threshold": 0.5},
                         headers=rep)
    assert ok.status_code == 201
