"""A view-only camera in Chromium: its live view plays blurred, relayed on demand; nothing is recorded; the hub
stops pulling it seconds after the last viewer leaves. Oracles: the kernel's TCP table (connections to the
camera's RTSP port), the recordings folder and index, and the audit log."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from civicam.audit.log import Actor
from civicam.db.models import AuditEvent, Camera
from civicam.storage.models import Segment

SETUP_ACTOR = Actor(name="e2e-setup", source="pytest", role="admin")


def established_to(port: int) -> int:
    """Connections to 127.0.0.1:port in state ESTABLISHED, counted at the server side (/proc/net/tcp)."""
    count = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "01":
            count += 1
    return count


def test_view_only_camera_is_relayed_blurred_and_never_recorded(hub: Any, sign_in: Any, rtsp_available: bool) -> None:
    from support.rtsp import RtspServer
    from support.services import require

    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    # Small enough for the hub to blur in real time on a shared box; a server of its own, so every connection
    # to its port is the hub's.
    cam_server = RtspServer([{"path": "/lobby", "source": "test", "width": 320, "height": 240, "fps": 5,
                              "codec": "h264", "bitrate_kbps": 200, "pattern": "ball", "shared": True}])
    cam_server.start()
    try:
        with hub.ctx.db.session() as s:  # accepted directly: the probe is not the subject here
            cam = Camera(site_id=hub.ids["site_b"], name="Lobby", url=cam_server.url("/lobby"), status="accepted",
                         view_only=True)
            s.add(cam)
            s.flush()
            cid = cam.id
        assert established_to(cam_server.port) == 0, "nobody pulls a view-only camera nobody watches"
        page = sign_in("admin")
        page.goto(f"{hub.url}/cameras/{cid}")
        assert page.get_by_test_id("view-only").is_visible()
        assert page.get_by_test_id("view-only-note").is_visible()
        assert page.locator("#h-rec").count() == 0 and page.locator("#h-an").count() == 0
        page.goto(f"{hub.url}/wall?n=4&site_id={hub.ids['site_b']}")
        video = f"document.querySelector(\".tile[data-camera='{cid}'] video\")"
        page.wait_for_function(f"() => {video} && {video}.currentTime > 0.5", timeout=60_000)
        tile = page.locator(f".tile[data-camera='{cid}']")
        assert tile.locator("[data-blur]").inner_text() == "blurred"
        assert established_to(cam_server.port) >= 1, "the hub pulls the camera while it is watched"
        relay_dir = hub.ctx.settings.data_dir / "relay" / f"cam{cid}"
        assert any((relay_dir / "blurred").rglob("*.mp4")), "the segments served were blurred copies"
        with hub.ctx.db.session() as s:
            assert s.execute(select(Segment.id).where(Segment.camera_id == cid)).first() is None
            views = s.execute(select(AuditEvent).where(AuditEvent.action == "live.view",
                                                       AuditEvent.object_id == str(cid))).scalars().all()
            assert views and views[-1].detail.get("relay") is True and views[-1].detail.get("blurred") is True
        assert not (hub.ctx.settings.data_dir / "recordings" / f"cam{cid:08d}").exists()

        page.goto(f"{hub.url}/")  # the last viewer leaves
        left = time.monotonic()
        while established_to(cam_server.port) > 0 or relay_dir.exists():
            assert established_to(cam_server.port) == 0 or time.monotonic() - left < 30, \
                "the relay still pulls 30 s after the last viewer left"
            assert time.monotonic() - left < 40, "the relay's scratch files are gone with it"
            time.sleep(0.25)  # polling interval of a deadline-bounded wait
        stopped_after = time.monotonic() - left
        assert stopped_after < 30
        with hub.ctx.db.session() as s:
            assert s.execute(select(Segment.id).where(Segment.camera_id == cid)).first() is None
    finally:
        cam_server.stop()


def _serve_tls(app: Any, cert: Any, key: Any) -> tuple[Any, Any, int]:
    """The same app on a second port over TLS (as ``civicam serve --tls``), for the site gateway; no lifespan
    of its own (the hub's services run once, on the first port)."""
    import threading

    import uvicorn

    from support.edge import free_port, wait_for

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ssl_certfile=str(cert),
                                           ssl_keyfile=str(key), lifespan="off", log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="web-hub-tls", daemon=True)
    thread.start()

    def up() -> bool:
        import httpx

        try:
            return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the hub over TLS", up, 20, every_s=0.1)
    return server, thread, port


def test_view_only_camera_behind_a_gateway_is_relayed_through_its_connection(
        hub: Any, sign_in: Any, rtsp_available: bool, tmp_path: Any) -> None:
    """The camera is reachable from the gateway only (its address is in edge.toml, never on the hub). Watching
    it makes the gateway, over its own outbound pinned-TLS connection, pull it and push segments up; Chromium
    plays them blurred; nothing is recorded on the hub or at the site; the gateway stops pulling seconds
    after the viewer leaves; another site's token cannot push for it."""
    import httpx

    from civicam.auth import site_tokens
    from civicam.auth.tls import generate_self_signed
    from support.edge import Gateway, wait_for
    from support.rtsp import RtspServer
    from support.services import require

    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    fingerprint = generate_self_signed(tmp_path / "hub.crt", tmp_path / "hub.key")
    server, thread, port = _serve_tls(hub.app, tmp_path / "hub.crt", tmp_path / "hub.key")
    cam_server = RtspServer([{"path": "/kiosk", "source": "test", "width": 320, "height": 240, "fps": 5,
                              "codec": "h264", "bitrate_kbps": 200, "pattern": "ball", "shared": True}])
    cam_server.start()
    site_a, site_b = hub.ids["site_a"], hub.ids["site_b"]
    with hub.ctx.db.session() as s:
        tok_a = site_tokens.issue(s, SETUP_ACTOR, site_a, rotate=True).token
        tok_b = site_tokens.issue(s, SETUP_ACTOR, site_b, rotate=True).token
    gw = Gateway(tmp_path / "gw", None, fingerprint, tok_a,
                 [{"name": "Kiosk", "url": cam_server.url("/kiosk"), "view_only": True}],
                 hub_url=f"https://127.0.0.1:{port}",
                 policy={"min_width": 320, "min_height": 240, "min_fps": 4.0, "max_fps": 30.0})
    gw.start()
    try:
        def registered() -> int | None:
            with hub.ctx.db.session() as s:
                cam = s.execute(select(Camera).where(Camera.site_id == site_a,
                                                     Camera.name == "Kiosk")).scalar_one_or_none()
                return cam.id if cam is not None and cam.status == "accepted" else None

        cid = wait_for("the gateway's view-only camera accepted on the hub", registered, 90)
        with hub.ctx.db.session() as s:
            cam = s.get(Camera, cid)
            assert cam is not None and cam.view_only and cam.source == "edge"
            assert cam.url.startswith("edge://"), "the hub never learns the camera's address"
        wait_for("the probe's connection closed", lambda: established_to(cam_server.port) == 0, 30)

        # Another site's gateway is never asked for it and cannot push for it.
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=30) as http:
            r = http.post(f"/api/edge/relay/{cid}/segments", content=b"x" * 100,
                          headers={"Authorization": f"Bearer {tok_b}", "Civicam-Start": "2030-01-01T00:00:00+00:00"})
            assert r.status_code == 403 and r.json()["code"] == "wrong_site", r.text

        page = sign_in("admin")
        opened = time.monotonic()
        page.goto(f"{hub.url}/wall?n=4&site_id={site_a}")
        video = f"document.querySelector(\".tile[data-camera='{cid}'] video\")"
        page.wait_for_function(f"() => {video} && {video}.currentTime > 0.5", timeout=90_000)
        print(f"gateway relay: playing {time.monotonic() - opened:.1f} s after the wall opened")
        tile = page.locator(f".tile[data-camera='{cid}']")
        assert tile.locator("[data-blur]").inner_text() == "blurred"
        assert established_to(cam_server.port) >= 1, "the gateway pulls the camera while it is watched"
        assert "relay started" in gw.log_text()
        relay_dir = hub.ctx.settings.data_dir / "relay" / f"cam{cid}"
        assert any((relay_dir / "blurred").rglob("*.mp4")), "the segments served were blurred copies"
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=30) as http:
            r = http.get("/api/edge/relay-requests", headers={"Authorization": f"Bearer {tok_b}"})
            assert r.status_code == 200 and cid not in r.json()["cameras"]
        with hub.ctx.db.session() as s:
            assert s.execute(select(Segment.id).where(Segment.camera_id == cid)).first() is None
            views = s.execute(select(AuditEvent).where(AuditEvent.action == "live.view",
                                                       AuditEvent.object_id == str(cid))).scalars().all()
            assert views and views[-1].detail.get("relay") is True and views[-1].detail.get("blurred") is True
            assert views[-1].detail.get("via_gateway") is True
        assert not (hub.ctx.settings.data_dir / "recordings" / f"cam{cid:08d}").exists()
        assert gw.recorded() == [] and gw.waiting() == [], "the gateway recorded nothing into its spool"

        page.goto(f"{hub.url}/")  # the last viewer leaves
        left = time.monotonic()
        while established_to(cam_server.port) > 0 or relay_dir.exists():
            assert time.monotonic() - left < 40, "the gateway still pulls 40 s after the last viewer left"
            time.sleep(0.25)  # polling interval of a deadline-bounded wait
        stopped_after = time.monotonic() - left
        print(f"gateway relay: the gateway stopped pulling {stopped_after:.1f} s after the viewer left")
        assert stopped_after < 40
        wait_for("the gateway's log says it stopped", lambda: "relay stopped" in gw.log_text(), 10)
        assert not list((gw.spool / "relay").rglob("*.mp4")), "the gateway's scratch segments are gone"
        with hub.ctx.db.session() as s:
            assert s.execute(select(Segment.id).where(Segment.camera_id == cid)).first() is None
        assert gw.recorded() == []
    finally:
        gw.stop()
        cam_server.stop()
        server.should_exit = True
        thread.join(20)
