"""Camera URLs by policy: local files for admins inside media directories only; region camera networks;
probe failures that do not tell closed, silent and non-camera ports apart for non-admins."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from civicam.context import Context, open_context
from civicam.db.models import AuditEvent
from civicam.registry import service
from civicam.registry.probe import OPAQUE_UNREACHABLE
from support.hub import ACTOR, ADMIN_PASSWORD, Api, api_for, make_settings

PROBE_S, TIMEOUT_S = 0.3, 0.6


def _hub(sqlite_url: str, tmp_path: Path, **extra: object) -> Iterator[Api]:
    ctx = open_context(make_settings(tmp_path / "data", sqlite_url, probe_seconds=PROBE_S,
                                     probe_timeout_s=TIMEOUT_S, **extra), create=True)
    yield from api_for(ctx)
    ctx.close()


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "door.mp4").write_bytes(b"not really a video")
    (tmp_path / "secret-export.mp4").write_bytes(b"unblurred")
    (folder / "escape.mp4").symlink_to(tmp_path / "secret-export.mp4")
    return folder


@pytest.fixture
def hub(sqlite_url: str, tmp_path: Path, media: Path) -> Iterator[Api]:
    yield from _hub(sqlite_url, tmp_path, registry={"media_dirs": [str(media)]})


def _sites(ctx: Context) -> tuple[int, int]:
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        a = service.add_site(s, ACTOR, region, "Mall", "Ann", "ann@mall.example")
        return region.id, a.id


def _add(api: Api, headers: dict[str, str], site: int, url: str) -> tuple[int, str]:
    r = api.client.post("/api/cameras", json={"site_id": site, "name": f"cam {time.monotonic_ns()}", "url": url},
                        headers=headers)
    return r.status_code, r.text


def test_local_files_only_for_admins_and_only_inside_media_dirs(hub: Api, media: Path, tmp_path: Path) -> None:
    _, site = _sites(hub.ctx)
    admin = hub.login("admin", ADMIN_PASSWORD)
    rep = hub.user("rep", "site_rep", site)
    door = media / "door.mp4"
    for url in (str(door), door.as_uri()):
        status, text = _add(hub, rep, site, url)
        assert status == 403 and "Only admins" in text, text
    assert _add(hub, admin, site, str(door))[0] == 201
    assert _add(hub, admin, site, door.as_uri())[0] == 201
    for outside in (tmp_path / "secret-export.mp4", media / ".." / "secret-export.mp4", media / "escape.mp4",
                    media):
        status, text = _add(hub, admin, site, str(outside))
        assert status == 400 and "media directories" in text, (outside, text)
    # Network cameras are untouched by the rule.
    assert _add(hub, rep, site, "rtsp://127.0.0.1:9/door")[0] == 201
    # No media directory configured (the default): no local files, for admins (and the CLI) too.
    with hub.ctx.db.session() as s, pytest.raises(service.RegistryError, match="no media directory is configured"):
        service.add_camera(s, ACTOR, hub.ctx.secrets, site, "cli door", str(door))


def test_region_camera_networks_bound_where_cameras_may_be(hub: Api) -> None:
    region, site = _sites(hub.ctx)
    admin = hub.login("admin", ADMIN_PASSWORD)
    # A camera added before the region was fenced in, then probed after: refused without a connection.
    early = hub.client.post("/api/cameras", json={"site_id": site, "name": "early", "url": "rtsp://127.0.0.1:9/x"},
                            headers=admin).json()["id"]
    bad = hub.client.put(f"/api/regions/{region}/policy", json={"camera_networks": ["10.20.0.0/33"]}, headers=admin)
    assert bad.status_code == 400 and "CIDR" in bad.text
    r = hub.client.put(f"/api/regions/{region}/policy", json={"camera_networks": ["10.20.0.0/16"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert _add(hub, admin, site, "rtsp://10.20.3.4:554/stream")[0] == 201
    status, text = _add(hub, admin, site, "rtsp://10.99.0.1:554/stream")
    assert status == 400 and "outside the region's camera networks (10.20.0.0/16)" in text
    status, text = _add(hub, admin, site, "rtsp://localhost:554/stream")  # names are resolved and checked too
    assert status == 400 and "127.0.0.1" in text
    t0 = time.monotonic()
    probe = hub.client.post(f"/api/cameras/{early}/probe", headers=admin).json()
    assert [r["code"] for r in probe["reasons"]] == ["network_not_allowed"]
    assert time.monotonic() - t0 < PROBE_S + TIMEOUT_S  # decided before any connection


@pytest.fixture
def ports() -> Iterator[dict[str, int]]:
    """Three kinds of port on loopback: closed (refused), silent (accepts, never answers), and one that
    answers with something that is not RTSP."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes handshakes; nobody ever reads or writes
    chatty = socket.socket()
    chatty.bind(("127.0.0.1", 0))
    chatty.listen(16)
    stop = threading.Event()

    def serve() -> None:
        chatty.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = chatty.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
                conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield {"closed": closed_port, "silent": silent.getsockname()[1], "chatty": chatty.getsockname()[1]}
    stop.set()
    thread.join(timeout=5)
    silent.close()
    chatty.close()


@pytest.mark.slow
def test_probe_failures_look_alike_to_non_admins(hub: Api, ports: dict[str, int]) -> None:
    _, site = _sites(hub.ctx)
    admin = hub.login("admin", ADMIN_PASSWORD)
    rep = hub.user("rep", "site_rep", site)
    cams = {kind: hub.client.post("/api/cameras", json={"site_id": site, "name": kind,
                                                        "url": f"rtsp://127.0.0.1:{port}/stream"},
                                  headers=admin).json()["id"] for kind, port in ports.items()}
    # The admin learns what the network path did: refused is not silent.
    seen = {kind: [r["code"] for r in hub.client.post(f"/api/cameras/{cid}/probe", headers=admin).json()["reasons"]]
            for kind, cid in cams.items()}
    assert seen["closed"] == ["unreachable"] and seen["silent"] == ["timeout"], seen
    # The site representative gets one answer for all three, none sooner than the probe's full deadline.
    for kind, cid in cams.items():
        t0 = time.monotonic()
        r = hub.client.post(f"/api/cameras/{cid}/probe", headers=rep)
        elapsed = time.monotonic() - t0
        body = r.json()
        assert r.status_code == 200, r.text
        assert body["reasons"] == [{"code": "unreachable", "message": OPAQUE_UNREACHABLE.message}], (kind, body)
        assert all(v is None for v in body["measured"].values()), (kind, body)
        assert elapsed >= PROBE_S + TIMEOUT_S, (kind, elapsed)
        stored = hub.client.get(f"/api/cameras/{cid}", headers=rep).json()["last_probe"]
        assert stored["reasons"] == body["reasons"]
    # The full finding stays in the audit log, for auditors and admins.
    with hub.ctx.db.session() as s:
        probes = [e.detail for e in s.execute(select(AuditEvent).where(AuditEvent.action == "camera.probe",
                                                                        AuditEvent.actor == "rep")).scalars()]
    assert {d["detail"][0]["code"] for d in probes} >= {"unreachable", "timeout"}
