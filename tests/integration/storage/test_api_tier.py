"""A stateless API tier: two ``civicam serve --api-only`` processes, one PostgreSQL, one S3 bucket.

A recorder process (``civicam.ingest.runner``) records a real RTSP camera into SeaweedFS. API process A
shares the recorder's data directory (the same node: it sees the segment in progress); B has a data
directory of its own (another node: only the database, the bucket and the hub's key are shared). A browser
session started on A works on B, CSRF included; an unblurred live view started on A switches to B mid-stream
and keeps playing: the same grant, the media sequence going on, the same segment bytes from both.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest
from cryptography.fernet import Fernet

from civicam.auth.users import create_user
from support.cityhub import add_cameras, file_mount, new_context, wait_for
from support.databases import PostgresTemplates
from support.rtsp import RtspServer, gst_rtsp_available, make_h264_file
from support.seaweedfs import SeaweedFS
from support.services import require
from support.tcp_proxy import LoopbackProxy
from support.web import free_port, process

# Generous: the module starts a recorder, two hub processes and (below) Chromium on a shared 2-core machine.
pytestmark = [pytest.mark.rtsp, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]
PASSWORD = "Viewer-Passw0rd!"
CHROMIUM = "/usr/bin/chromium"
CIVICAM = str(Path(sys.executable).parent / "civicam")


def _serve(stack: ExitStack, env: dict[str, str], data_dir: Path, log: Path) -> tuple[str, Callable[[], bool]]:
    """Start ``civicam serve --api-only``; its address and a readiness check (processes start in parallel)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)  # the key comes from CIVICAM_SECRET_KEY, not a file here
    proc = stack.enter_context(process([CIVICAM, "serve", "--api-only", "--port", str(port)],
                                        {**env, "CIVICAM_DATA_DIR": str(data_dir)}, log))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return base, up


def _segments(playlist: str) -> list[tuple[int, str]]:
    """(media sequence number, URI) of each whole segment in a media playlist."""
    seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist).group(1))  # type: ignore[union-attr]
    uris = [line for line in playlist.splitlines() if line.startswith("segments/") and "/media.m4s" in line]
    return [(seq + i, uri) for i, uri in enumerate(uris)]


def _decodes(init: bytes, media: bytes, where: Path) -> int:
    where.write_bytes(init + media)
    with av.open(str(where)) as c:
        return sum(1 for _ in c.decode(video=0))


@dataclass
class Tier:
    a: str  # the API process on the recording node (its data directory and spool)
    b: str  # the API process of another node (a data directory of its own)
    a_port: int
    b_port: int
    cam: int


@pytest.fixture(scope="module")
def tier(seaweed: SeaweedFS, s3_bucket: str, tmp_path_factory: pytest.TempPathFactory,
         postgres_templates: PostgresTemplates | None) -> Iterator[Tier]:
    """A recorder and two API processes on one PostgreSQL database and one bucket prefix, for the module."""
    require(postgres_templates is not None, "PostgreSQL at 127.0.0.1:5432")
    require(gst_rtsp_available(), "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    assert postgres_templates is not None
    tmp_path = tmp_path_factory.mktemp("api-tier")
    db_url = postgres_templates.fresh()
    clip = make_h264_file(tmp_path / "clip.h264", seconds=4)
    key = Fernet.generate_key().decode()
    env = {**os.environ, **seaweed.env(s3_bucket, "api-tier/"), "CIVICAM_DATABASE_URL": db_url,
           "CIVICAM_SECRET_KEY": key, "CIVICAM_RECORDING__SEGMENT_TARGET_S": "2",
           "CIVICAM_RECORDING__MIN_FREE_BYTES": "0", "CIVICAM_RECORDING__BLUR_AHEAD_WORKERS": "0",
           "CIVICAM_PROBE_SECONDS": "1"}
    node_a, node_b = tmp_path / "node-a", tmp_path / "node-b"
    try:
        with RtspServer([file_mount("/cam", clip)]) as server, ExitStack() as stack:
            ctx = new_context(node_a, db_url)
            stack.callback(ctx.close)
            (cam,) = add_cameras(ctx, [server.url("/cam")])
            with ctx.db.session() as s:
                create_user(s, "viewer", PASSWORD, "admin", None, True)
            stack.enter_context(process([sys.executable, "-m", "civicam.ingest.runner"],
                                         {**env, "CIVICAM_DATA_DIR": str(node_a)}, tmp_path / "recorder.log"))
            a, a_up = _serve(stack, env, node_a, tmp_path / "serve-a.log")
            b, b_up = _serve(stack, env, node_b, tmp_path / "serve-b.log")
            wait_for(lambda: a_up() and b_up(), 60, "both API processes answering /healthz")
            yield Tier(a, b, int(a.rsplit(":", 1)[1]), int(b.rsplit(":", 1)[1]), cam)
    finally:
        postgres_templates.drop(db_url)


@pytest.mark.browser
def test_a_playing_live_view_moves_to_the_otherprocess(tier: Tier) -> None:
    """Chromium plays the dashboard's unblurred live view through a balancer, which fails it over from A to
    B mid-stream (open connections cut, new ones to B): the video goes on playing, fetched from B.

    First in the module: the probe of the test below may change the camera's status.
    """
    require(os.path.exists(CHROMIUM), f"Debian chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with LoopbackProxy(tier.a_port) as balancer, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
            "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{balancer.url}/login")
            page.get_by_label("Username").fill("viewer")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{balancer.url}/")
            page.goto(f"{balancer.url}/cameras/{tier.cam}")
            page.get_by_text("View unblurred…").click()
            page.get_by_label("Stated reason (recorded in the audit log)").fill("failover test")
            page.get_by_role("button", name="Show unblurred").click()
            player = "document.querySelector('#player')"
            page.wait_for_function(f"() => {player}.currentTime > 1", timeout=90_000)
            before = balancer.connections.get(tier.b_port, 0)
            balancer.retarget(tier.b_port)
            t = page.evaluate(f"{player}.currentTime")
            # Past anything A could have buffered (a live player holds a few seconds at most): B served it.
            page.wait_for_function(f"() => {player}.currentTime > {t} + 6", timeout=60_000)
            assert balancer.connections.get(tier.b_port, 0) > before
            assert page.evaluate(f"{player}.dataset.state") == "playing"
        finally:
            browser.close()


def test_two_api_processes_serve_one_hub(tier: Tier, tmp_path: Path) -> None:
    a, b, cam = tier.a, tier.b, tier.cam
    with ExitStack() as stack:
        browser_a = stack.enter_context(httpx.Client(base_url=a, timeout=30))
        on_a = stack.enter_context(httpx.Client(base_url=a, timeout=30))  # API clients: no cookies
        on_b = stack.enter_context(httpx.Client(base_url=b, timeout=30))

        # A browser session: signed in on A, its pages on B, a CSRF-checked change made on B, back on A.
        r = browser_a.post("/login", data={"username": "viewer", "password": PASSWORD, "next": "/"},
                           headers={"Origin": a})
        assert r.status_code == 303, r.text
        cookie = browser_a.cookies.get("civicam_session")
        assert cookie
        browser_b = stack.enter_context(httpx.Client(base_url=b, timeout=30,
                                                     cookies={"civicam_session": cookie}))
        page = browser_b.get("/")
        assert page.status_code == 200 and "viewer" in page.text
        csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)"', page.text)
        assert csrf is not None
        made = browser_a.post("/api/regions", json={"name": "made across processes"},
                              headers={"X-CSRF-Token": csrf.group(1)})
        assert made.status_code == 201, made.text
        forged = browser_b.post("/api/regions", json={"name": "forged"}, headers={"X-CSRF-Token": "0" * 64})
        assert forged.status_code == 403
        assert made.json()["id"] in {x["id"] for x in browser_b.get("/api/regions").json()}

        # The live view, started on A (reason audited there), its grant riding on the media playlist URL.
        auth = {"Authorization": "Bearer " + on_a.post(
            "/api/auth/token", json={"username": "viewer", "password": PASSWORD}).json()["access_token"]}
        wait_for(lambda: on_a.get(f"/api/cameras/{cam}/live.m3u8", headers=auth).status_code == 200, 60,
                 "a first recorded segment")
        master = on_a.get(f"/api/cameras/{cam}/live.m3u8", params={"unblurred_reason": "incident 7"},
                          headers=auth)
        assert master.status_code == 200
        media_uri = next(line for line in master.text.splitlines() if line.startswith("live/media.m3u8"))
        live = f"/api/cameras/{cam}/{media_uri}"
        base_path = f"/api/cameras/{cam}/live/"

        def playlist(client: httpx.Client) -> str:
            got = client.get(live, headers=auth)
            assert got.status_code == 200, got.text
            return got.text

        first = playlist(on_a)
        assert "#EXT-X-PART:" in first  # A is the recording node: parts of the segment in progress
        seq_a, uri_a = _segments(first)[-1]
        init_a = on_a.get(base_path + uri_a.replace("media.m4s", "init.mp4"), headers=auth).content
        media_a = on_a.get(base_path + uri_a, headers=auth).content
        assert _decodes(init_a, media_a, tmp_path / "a.mp4") >= 40  # ~2 s at 25 fps

        # Switch to B mid-stream: the same grant holds, the sequence goes on, the bytes are the same.
        assert on_b.get(base_path + uri_a, headers=auth).content == media_a
        later = wait_for(lambda: [s for s in _segments(playlist(on_b)) if s[0] > seq_a], 30,
                         "B listing segments newer than the last one played from A")
        seq_b, uri_b = later[0]
        assert seq_b == seq_a + 1  # no segment skipped, none repeated
        init_b = on_b.get(base_path + uri_b.replace("media.m4s", "init.mp4"), headers=auth)
        media_b = on_b.get(base_path + uri_b, headers=auth)
        assert init_b.status_code == media_b.status_code == 200
        assert _decodes(init_b.content, media_b.content, tmp_path / "b.mp4") >= 40
        # A blocking reload on B for the next segment is answered once it is published (B has no spool
        # copy of the segment in progress; the bucket and the index are what it shares).
        nxt = on_b.get(f"{live}&_HLS_msn={seq_b + 1}", headers=auth)
        assert nxt.status_code == 200 and any(s == seq_b + 1 for s, _ in _segments(nxt.text))

        # Last (a probe may change the camera's status): the onboarding wizard starts a probe on A and
        # its polls reach B, which answers from the stored report.
        started = browser_a.post("/web/api/probe-jobs", json={"camera_id": cam},
                                 headers={"X-CSRF-Token": csrf.group(1)})
        assert started.status_code == 202, started.text
        job = started.json()["id"]
        assert browser_b.get(f"/web/api/probe-jobs/{job}").json()["state"] in ("running", "done")
        on_b_done = wait_for(lambda: (j := browser_b.get(f"/web/api/probe-jobs/{job}").json())["state"] != "running"
                             and j, 60, "the probe reported on B")
        on_a_done = wait_for(lambda: (j := browser_a.get(f"/web/api/probe-jobs/{job}").json())["state"] != "running"
                             and j, 30, "the probe finished on A")
        assert on_b_done["state"] == on_a_done["state"] == "done"
        assert on_b_done["result"] == on_a_done["result"]  # the same report, from memory and from the database
        assert on_b_done["result"]["measured"]["width"] == 1280
        assert browser_b.get(f"/web/api/probe-jobs/{job[:-3]}xyz").status_code == 404  # a forged id
