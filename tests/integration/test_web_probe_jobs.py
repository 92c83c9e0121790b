"""The wizard's probe endpoint over HTTP: a full job queue is a clear 503, not one more thread."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from civicam.audit.log import Actor
from civicam.registry import service
from civicam.registry.probe_jobs import ProbeJobs
from support.hub import ACTOR, ADMIN_PASSWORD, Api


def test_a_full_probe_queue_is_refused_with_a_clear_error(sqlite_api: Api) -> None:
    api = sqlite_api
    with api.ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ann", "ann@mall.example")
        cam = service.add_camera(s, ACTOR, api.ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door").id
    release = threading.Event()

    def probe(actor: Actor, camera_id: int) -> dict[str, Any]:
        release.wait(30)
        return {"verdict": "rejected", "reasons": []}

    jobs = ProbeJobs(probe, logging.getLogger("test"), workers=1, max_pending=1)
    api.client.app.state.probe_jobs = jobs  # type: ignore[attr-defined]  # what the first request would make
    try:
        r = api.client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/"},
                            follow_redirects=False)
        assert r.status_code == 303
        match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', api.client.get("/").text)
        assert match
        headers = {"X-CSRF-Token": match.group(1)}
        first = api.client.post("/web/api/probe-jobs", json={"camera_id": cam}, headers=headers)
        assert first.status_code == 202, first.text
        second = api.client.post("/web/api/probe-jobs", json={"camera_id": cam}, headers=headers)
        assert second.status_code == 503 and second.headers["retry-after"] == "5"
        assert "at most 1" in second.json()["detail"]
        release.set()
        polled = api.client.get(f"/web/api/probe-jobs/{first.json()['id']}")
        assert polled.status_code == 200 and polled.json()["camera_id"] == cam
    finally:
        release.set()
        jobs.close()
