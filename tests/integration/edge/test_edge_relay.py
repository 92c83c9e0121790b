"""View-only cameras behind a gateway, the hub's side: the long poll that tells a gateway which of its cameras
somebody watches, and the bounded push path its segments come up by. In-process app (TestClient), real
fMP4 segments made here; oracles: the relay window as served to a viewer, the index and the recordings
folder read directly, and the answers' status and code words."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from civicam.api.routers import edge as edge_router
from civicam.auth import site_tokens
from civicam.config.recording import RecordingSettings
from civicam.db.base import utcnow
from civicam.domain.segments import camera_prefix
from civicam.ingest.service import recording_settings, store_for
from civicam.ingest.uploads import UploadService
from civicam.live import relay as relay_mod
from civicam.live.relay import RelayService
from civicam.registry import service
from civicam.storage.media import FMP4_OPTIONS, probe
from civicam.storage.models import Segment
from support.hub import ACTOR, ADMIN_PASSWORD, Api

ACCEPTED = {"verdict": "accepted", "measured": {"width": 160}, "reasons": []}


def clip(path: Path, seconds: float = 1.0, fps: int = 10) -> bytes:
    """A small fMP4 segment written the way the recorder writes one (init section, then fragments)."""
    with av.open(str(path), "w", format="mp4", options=FMP4_OPTIONS) as out:
        st = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(fps)})
        st.width, st.height, st.pix_fmt, st.time_base = 160, 120, "yuv420p", Fraction(1, 90000)
        for i in range(int(fps * seconds)):
            img = np.full((120, 160, 3), (i * 20) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i * 90000 // fps, Fraction(1, 90000)
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path.read_bytes()


class Viewer:
    """An operator watching a camera's live view: opens it, then reloads the relayed playlist until leaving."""

    def __init__(self, client: TestClient, headers: dict[str, str], camera_id: int) -> None:
        self.client, self.headers, self.camera_id = client, headers, camera_id
        self.master: tuple[int, str] | None = None
        self.playlists: list[str] = []
        self.opened = threading.Event()
        self.leave = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        r = self.client.get(f"/api/cameras/{self.camera_id}/live.m3u8", headers=self.headers)
        self.master = (r.status_code, r.text)
        self.opened.set()
        while r.status_code == 200 and not self.leave.wait(0.3):  # a player's reload interval
            m = self.client.get(f"/api/cameras/{self.camera_id}/relay/media.m3u8", headers=self.headers)
            if m.status_code == 200:
                self.playlists.append(m.text)

    def stop(self) -> None:
        self.leave.set()
        self.thread.join(30)


def push(client: TestClient, token: str, camera_id: int, body: bytes, start: datetime) -> tuple[int, str]:
    r = client.post(f"/api/edge/relay/{camera_id}/segments", content=body,
                    headers={"Authorization": f"Bearer {token}", "Civicam-Start": start.isoformat(),
                             "Content-Type": "video/mp4"})
    code = r.json().get("code", "") if r.headers.get("content-type", "").startswith("application/json") else ""
    return r.status_code, code


def poll(client: TestClient, token: str, have: list[int]) -> list[int]:
    r = client.get("/api/edge/relay-requests", params={"have": ",".join(map(str, have))},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [int(c) for c in r.json()["cameras"]]


@pytest.fixture
def hub(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setattr(edge_router, "RELAY_HOLD_S", 1.0)  # a long poll nobody answers returns soon
    # The app's relays, made before any request so that an idle relay is reaped after 1.5 s, not 8.
    relays = RelayService(api.ctx.settings.data_dir / "relay", recording_settings(api.ctx),
                          logging.getLogger("test.relay"), utcnow, idle_s=1.5)
    api.client.app.state.relays = relays  # type: ignore[attr-defined]
    yield api
    relays.close()


def test_gateway_relay_is_wanted_pushed_bounded_and_stopped(hub: Api, tmp_path: Path) -> None:
    ctx, client = hub.ctx, hub.client
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site_a = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@x.example").id
        site_b = service.add_site(s, ACTOR, region, "Station", "Bo", "bo@x.example").id
        tok_a = site_tokens.issue(s, ACTOR, site_a).token
        tok_b = site_tokens.issue(s, ACTOR, site_b).token
    uploads = UploadService(ctx.db, store_for(ctx))
    lobby = uploads.register_camera(site_a, "Lobby", True, ACCEPTED)["id"]
    door = uploads.register_camera(site_a, "Door", False, ACCEPTED)["id"]  # recorded, not view-only
    hall = uploads.register_camera(site_b, "Hall", True, ACCEPTED)["id"]
    body = clip(tmp_path / "seg.mp4")
    duration = probe(str(tmp_path / "seg.mp4")).duration_s
    t0 = datetime.now(UTC).replace(microsecond=0)

    # Nobody watches: the long poll holds, then answers that nothing is wanted; a push is not wanted.
    assert poll(client, tok_a, []) == []
    assert push(client, tok_a, lobby, body, t0) == (409, "not_wanted")
    # Only the site's own token, only its view-only cameras, only a gateway token.
    assert push(client, tok_a, hall, body, t0) == (403, "wrong_site")
    assert push(client, tok_a, door, body, t0) == (403, "not_view_only")
    r = client.post(f"/api/edge/relay/{lobby}/segments", content=body, headers={"Civicam-Start": t0.isoformat()})
    assert r.status_code == 401

    admin = hub.login("admin", ADMIN_PASSWORD)
    viewer = Viewer(client, admin, lobby)
    try:
        # The viewer is waiting for the first segment; the gateway's long poll learns the camera is wanted.
        deadline = datetime.now() + timedelta(seconds=20)
        while (wanted := poll(client, tok_a, [])) == []:
            assert datetime.now() < deadline, "the long poll never said the camera is wanted"
        assert wanted == [lobby]
        assert poll(client, tok_b, []) == [], "another site's gateway is not asked for this camera"
        assert push(client, tok_b, lobby, body, t0) == (403, "wrong_site"), "another site's token refused"
        assert push(client, tok_a, lobby, body, t0) == (200, "")
        assert viewer.opened.wait(30)
        assert viewer.master is not None and viewer.master[0] == 200, viewer.master
        assert "relay/media.m3u8" in viewer.master[1]

        # Bounded: a body over the size limit, bytes that are no video, a segment out of order.
        assert push(client, tok_a, lobby, b"\0" * (relay_mod.MAX_PUSH_BYTES + 1), t0) == (413, "too_large")
        assert push(client, tok_a, lobby, b"not a segment" * 100, t0 + timedelta(seconds=5)) == (400, "bad_segment")
        assert push(client, tok_a, lobby, body, t0 - timedelta(seconds=10)) == (409, "out_of_order")
        # Faster than any camera's live view: refused with 429 before long (the burst is a few segments).
        answers = []
        start = t0 + timedelta(seconds=duration)
        for _ in range(40):
            status, code = push(client, tok_a, lobby, body, start)
            answers.append(status)
            if status == 429:
                assert code == "rate"
                break
            assert status == 200, (status, code)
            start += timedelta(seconds=duration)
        assert answers[-1] == 429, f"no rate limit in {len(answers)} pushes"
        # A gateway that keeps to the rate (waits as Retry-After says) is served; only the playlist's window
        # (and two more) is kept on disk of what it pushed.
        window = recording_settings(ctx).live_segments
        deadline = datetime.now() + timedelta(seconds=30)
        while answers.count(200) + 1 < window + 4:
            assert datetime.now() < deadline, f"pushes at the allowed rate refused: {answers}"
            status, code = push(client, tok_a, lobby, body, start)
            answers.append(status)
            if status == 429:
                viewer.leave.wait(1.0)  # Retry-After: 1
                continue
            assert status == 200, (status, code)
            start += timedelta(seconds=duration)
        kept = list((ctx.settings.data_dir / "relay" / f"cam{lobby}" / "segments").rglob("*.mp4"))
        assert len(kept) == window + 2, kept
        # The viewer's playlist lists what was pushed (the window's newest), whole segments.
        seen = len(viewer.playlists)
        deadline = datetime.now() + timedelta(seconds=20)
        while len(viewer.playlists) <= seen:
            assert datetime.now() < deadline, "the viewer reloads its playlist"
            viewer.leave.wait(0.1)  # polling interval of a deadline-bounded wait
        newest = answers.count(200)  # the first push was seq 0, then one per accepted push
        assert f"segments/{newest}/media.m4s" in viewer.playlists[-1], viewer.playlists[-1]
        assert f"#EXT-X-MAP:URI=\"segments/{newest}/init.mp4\"" in viewer.playlists[-1]
        # The viewer keeps watching: a long poll of a gateway that relays it holds and says it is wanted.
        assert poll(client, tok_a, [lobby]) == [lobby]
    finally:
        viewer.stop()

    # The viewer left: the relay is reaped; the gateway's long poll answers without the camera and a
    # push is refused as not wanted, which is the gateway's signal to stop pulling.
    deadline = datetime.now() + timedelta(seconds=20)
    while poll(client, tok_a, [lobby]) != []:
        assert datetime.now() < deadline, "the relay was not stopped after the viewer left"
    assert push(client, tok_a, lobby, body, start + timedelta(seconds=30)) == (409, "not_wanted")
    assert not (ctx.settings.data_dir / "relay" / f"cam{lobby}").exists(), "its scratch files are gone"

    # Never recorded: no index row, nothing in the recordings store, no upload.
    with ctx.db.session() as s:
        assert s.execute(select(Segment.id).where(Segment.camera_id == lobby)).first() is None
    assert not (ctx.settings.data_dir / "recordings" / camera_prefix(lobby)).exists()
    assert not list((ctx.settings.data_dir / "recordings").rglob("*.upload"))


def test_a_relay_wanted_again_while_the_last_one_stops_keeps_its_files(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The reaper deletes a stopped relay's scratch folder outside the service's lock. A viewer coming back
    meanwhile gets its new relay only once that is over (else the old deletion takes the new relay's files),
    pushes are refused meanwhile, and the gateway hears "not wanted" only once the files are gone."""
    release, stopping, stopped = threading.Event(), threading.Event(), threading.Event()
    real_stop = relay_mod.EdgeRelay.stop

    def slow_stop(self: relay_mod.EdgeRelay) -> None:
        stopping.set()
        assert release.wait(10)
        real_stop(self)
        stopped.set()

    monkeypatch.setattr(relay_mod.EdgeRelay, "stop", slow_stop)
    svc = RelayService(tmp_path / "relay", RecordingSettings(), logging.getLogger("test.relay"), utcnow, idle_s=0.2)
    try:
        first = svc.want(7)
        assert stopping.wait(10), "an idle relay is reaped"
        svc.idle_s = 60.0  # the next relay stays for the checks below
        assert svc.wanted([7]) == [7] and svc.pushed(7) is None and first.root.exists()
        again: list[relay_mod.RelayWindow] = []
        viewer = threading.Thread(target=lambda: again.append(svc.want(7)))
        viewer.start()
        viewer.join(0.5)  # time for a relay made at once (the race) to exist before the old folder goes
        release.set()
        assert stopped.wait(10)
        viewer.join(10)
        assert again and again[0] is not first
        assert isinstance(again[0], relay_mod.EdgeRelay) and again[0].incoming.is_dir(), "the new relay's files"
        assert svc.wanted([7]) == [7] and svc.pushed(7) is again[0]
    finally:
        release.set()
        svc.close()
