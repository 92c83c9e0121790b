"""A view-only camera in Chromium: its live view plays blurred, relayed on demand; nothing is recorded; the hub
stops pulling it seconds after the last viewer leaves. Oracles: the kernel's TCP table (connections to the
camera's RTSP port), the recordings folder and index, and the audit log."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from civicam.db.models import AuditEvent, Camera
from civicam.storage.models import Segment


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
