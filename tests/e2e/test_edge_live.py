"""A gateway camera's live view by parts: the gateway streams the segment it is recording, and the hub's
low-latency playlist lists that segment's parts before the gateway has finished it. Real processes on
loopback: the hub ``civicam serve --tls``, the gateway ``civicam edge run``, a camera from the GStreamer
RTSP server.

Oracles independent of the code under test: the gateway's spool file (the part bytes the hub serves must
be the bytes at those offsets of the gateway's ``.partial``, opened while the gateway still writes it),
the gateway's journal of what it recorded with the SHA-256 it took then, hashlib over the hub's file, and
the hub's database read directly."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.edge import Gateway, Hub, sha256_file, wait_for
from support.playlist_rules import attributes, check
from support.rtsp import RtspServer
from support.rtsp_fixtures import STANDARD_MOUNTS
from support.services import require

pytestmark = [pytest.mark.rtsp, pytest.mark.slow, pytest.mark.timeout(300)]
TARGET_S = 4.0  # the gateway's default segment: four seconds, eight parts of half a second
VIEWER, VIEWER_PASSWORD = "watcher", "Watcher-passw0rd-live"


@pytest.fixture
def cameras(rtsp_available: bool) -> Iterator[RtspServer]:
    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    with RtspServer([m for m in STANDARD_MOUNTS if m["path"] == "/good"]) as server:
        yield server


@dataclass(frozen=True)
class Part:
    uri: str
    offset: int
    length: int


@dataclass(frozen=True)
class Edge:
    """The in-progress segment of a live playlist: the parts after its last whole segment, and its map."""

    name: str  # the segment's file name (its start), as in the part URIs
    map_uri: str
    map_range: tuple[int, int]  # (offset, length)
    parts: list[Part]


def in_progress(text: str) -> Edge | None:
    parts: list[Part] = []
    map_uri, map_range = "", (0, 0)
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            a = attributes(line.split(":", 1)[1])
            n, off = a.get("BYTERANGE", "0@0").split("@")
            map_uri, map_range = a["URI"].split("?")[0], (int(off), int(n))
        elif line.startswith("#EXT-X-PART:"):
            a = attributes(line.split(":", 1)[1])
            n, off = a["BYTERANGE"].split("@")
            parts.append(Part(a["URI"].split("?")[0], int(off), int(n)))  # the query is the grant
        elif line and not line.startswith("#"):
            parts = []  # a whole segment: the parts listed so far were its own
    if not parts:
        return None
    return Edge(parts[0].uri.rsplit("/", 1)[-1], map_uri, map_range, parts)


def spool_partial(gw: Gateway, local_id: int, name: str) -> Path:
    """Where the gateway's recorder writes the segment ``name`` (domain/segments.py layout, by the gateway's
    local camera number)."""
    t = datetime.strptime(name, "%Y%m%dT%H%M%S.%fZ.mp4")
    return gw.spool / "segments" / f"cam{local_id:08d}" / f"{t:%Y/%m/%d/%H}" / (name + ".partial")


class Viewer:
    """An operator with ``view_unblurred`` watching a camera's unblurred live view over the hub's API."""

    def __init__(self, hub: Hub, camera: int) -> None:
        self.http = httpx.Client(base_url=hub.url, verify=False, timeout=30)
        self.camera = camera
        admin = self._token("admin", hub.admin_password)
        r = self.http.post("/api/users", json={"username": VIEWER, "password": VIEWER_PASSWORD, "role": "operator",
                                               "view_unblurred": True}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code in (200, 201), r.text
        self.http.headers["Authorization"] = f"Bearer {self._token(VIEWER, VIEWER_PASSWORD)}"
        r = self.http.get(f"/api/cameras/{camera}/live.m3u8", params={"unblurred_reason": "gateway live test"})
        assert r.status_code == 200, r.text
        media = next(ln for ln in r.text.splitlines() if ln and not ln.startswith("#"))
        self.grant = re.search(r"grant=([^&]+)", media)[1]  # type: ignore[index]

    def _token(self, user: str, password: str) -> str:
        r = self.http.post("/api/auth/token", json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def playlist(self) -> str:
        r = self.http.get(f"/api/cameras/{self.camera}/live/media.m3u8", params={"grant": self.grant})
        assert r.status_code == 200, r.text
        return r.text

    def blurred(self) -> str | None:
        """The blurred live playlist (what a viewer gets without a reason); None while its pipeline starts."""
        r = self.http.get(f"/api/cameras/{self.camera}/live/media.m3u8")
        if r.status_code == 503:
            return None
        assert r.status_code == 200, r.text
        return r.text

    def part(self, uri: str, offset: int, length: int) -> bytes:
        r = self.http.get(f"/api/cameras/{self.camera}/live/{uri}", params={"grant": self.grant},
                          headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        assert r.status_code == 206, (r.status_code, r.text[:200])
        return r.content

    def close(self) -> None:
        self.http.close()


def camera_id(hub: Hub, site_id: int, name: str) -> int | None:
    rows = hub.query("SELECT id FROM cameras WHERE site_id = ? AND name = ?", site_id, name)
    return int(rows[0][0]) if rows else None


def hub_segments(hub: Hub, cam: int) -> list[tuple[datetime, str]]:
    rows = hub.query("SELECT start, path FROM recording_segments WHERE camera_id = ? ORDER BY start", cam)
    return [(datetime.fromisoformat(r[0]).replace(tzinfo=UTC), str(r[1])) for r in rows]


def start_of(name: str) -> datetime:
    return datetime.strptime(name, "%Y%m%dT%H%M%S.%fZ.mp4").replace(tzinfo=UTC)


def journal(gw: Gateway) -> dict[datetime, dict[str, Any]]:
    out: dict[datetime, dict[str, Any]] = {}
    for entry in gw.recorded():
        start = datetime.fromisoformat(entry["start"])
        assert out.get(start, entry)["sha256"] == entry["sha256"], "one segment journalled with two digests"
        out[start] = entry
    return out


def streamed(hub: Hub, cam: int) -> list[bool]:
    """Per upload of the camera, oldest first: whether it was streamed (created without a length)."""
    rows = hub.query("SELECT meta FROM edge_uploads WHERE camera_id = ? ORDER BY start", cam)
    return [bool(json.loads(r[0]).get("stream")) for r in rows]


def setup(tmp_path: Path, cameras: RtspServer, **settings: Any) -> tuple[Hub, Gateway, int]:
    hub = Hub(tmp_path / "hub")
    hub.setup()
    site = hub.add_site("Mall")
    tok = hub.token(site)
    hub.start()
    gw = Gateway(tmp_path / "gw", hub, tok["hub_fingerprint"], tok["token"],
                 [{"name": "Door", "url": cameras.url("/good")}], segment_target_s=TARGET_S, **settings)
    gw.start()
    cam = wait_for("the gateway's camera on the hub", lambda: camera_id(hub, site, "Door"), 60)
    wait_for("a first segment on the hub", lambda: hub_segments(hub, cam), 60)
    return hub, gw, cam


def test_gateway_camera_live_view_lists_parts_of_the_segment_being_recorded(tmp_path: Path,
                                                                             cameras: RtspServer) -> None:
    hub, gw, cam = setup(tmp_path, cameras)
    # Nobody watches yet: whole segments, one request each (the gateway's default streams watched cameras).
    wait_for("two segments on the hub", lambda: len(hub_segments(hub, cam)) >= 2, 60)
    assert not any(streamed(hub, cam)), "a segment was streamed while nobody watched"
    viewer = Viewer(hub, cam)
    checked: dict[str, int] = {}  # in-progress segments checked against the spool: parts compared
    try:
        deadline = time.monotonic() + 60
        while len(checked) < 2 or min(checked.values()) < 2:
            assert time.monotonic() < deadline, f"parts of segments in progress seen: {checked}"
            text = viewer.playlist()
            edge = in_progress(text)
            if edge is None:
                time.sleep(0.1)  # polling interval; the deadline above bounds the wait
                continue
            assert not check(text).problems, check(text).problems
            on_hub = {s for s, _ in hub_segments(hub, cam)}
            try:
                # Opened while the gateway still writes it: the segment had not finished at the site when the
                # hub listed its parts. The descriptor reads the same file through its publication and deletion.
                fd = os.open(spool_partial(gw, 1, edge.name), os.O_RDONLY)
            except FileNotFoundError:
                continue  # finished meanwhile: look at the next one
            try:
                assert start_of(edge.name) not in on_hub, "listed in progress, so not stored on the hub yet"
                for part in [Part(edge.map_uri, *edge.map_range), *edge.parts]:
                    if part.length == 0:
                        continue
                    served = viewer.part(part.uri, part.offset, part.length)
                    assert served == os.pread(fd, part.length, part.offset), f"{part} differs from the spool"
                checked[edge.name] = max(checked.get(edge.name, 0), len(edge.parts))
            finally:
                os.close(fd)

        # Each checked segment, once finished, is on the hub exactly once with the gateway's digest, sent
        # by the stream (no byte twice, no resume).
        for name in checked:
            start = start_of(name)
            rows = wait_for(f"segment {name} on the hub", lambda s=start: [p for t, p in hub_segments(hub, cam)
                                                                            if t == s], 30)
            assert len(rows) == 1
            entry = wait_for(f"segment {name} in the gateway's journal", lambda s=start: journal(gw).get(s), 10)
            assert sha256_file(hub.data_dir / "recordings" / rows[0]) == entry["sha256"]
            (status, length, received, resumes), = [
                r[1:] for r in hub.query("SELECT start, status, length, received_bytes, resumes FROM edge_uploads "
                                         "WHERE camera_id = ?", cam)
                if datetime.fromisoformat(r[0]).replace(tzinfo=UTC) == start]
            assert (status, received, resumes) == ("done", length, 0), (status, received, length, resumes)
            assert not (hub.data_dir / "recordings" / (rows[0] + ".partial")).exists(), "the live name went"

        # The blurred view (the default) follows the same edge: its pipeline blurs the streamed fragments and
        # lists them as parts of the segment while the gateway still records it.
        assert viewer.http.get(f"/api/cameras/{cam}/live.m3u8").status_code == 200  # a blurred view, audited
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, "no blurred part of a segment in progress at the gateway"
            text = viewer.blurred()
            edge = in_progress(text) if text is not None else None
            if edge is not None and edge.parts and spool_partial(gw, 1, edge.name).exists():
                part = edge.parts[-1]
                r = viewer.http.get(f"/api/cameras/{cam}/live/{part.uri}",
                                    headers={"Range": f"bytes={part.offset}-{part.offset + part.length - 1}"})
                assert r.status_code == 206 and len(r.content) == part.length
                break
            time.sleep(0.2)  # polling interval; the deadline above bounds the wait
    finally:
        viewer.close()
        gw.stop()
        hub.stop()
    starts = [s for s, _ in hub_segments(hub, cam)]
    assert len(starts) == len(set(starts)), "a segment is on the hub twice"
    assert "live.view" in {r[0] for r in hub.query("SELECT action FROM audit_events")}, "the view was audited"


def test_stream_cut_by_sigkill_is_delivered_once_after_restart(tmp_path: Path, cameras: RtspServer) -> None:
    hub, gw, cam = setup(tmp_path, cameras, live_parts="always")  # streamed, watched or not
    recordings = hub.data_dir / "recordings"

    def streaming() -> tuple[str, datetime] | None:
        """An open streamed upload (no length yet) with fragments in, its segment still being recorded."""
        for upload, start, created in hub.query("SELECT id, start, created_at FROM edge_uploads WHERE camera_id = ? "
                                                "AND status = 'open' AND length = 0", cam):
            t = datetime.fromisoformat(start).replace(tzinfo=UTC)
            name = f"{t:%Y%m%dT%H%M%S.%f}Z.mp4"
            size = (recordings / "incoming" / f"{upload}.upload").stat().st_size
            age = datetime.now(UTC) - datetime.fromisoformat(created).replace(tzinfo=UTC)
            # A fragment or more in, and streamed for under half of its 4 s: it cannot finish before the kill.
            if size > 4_000 and age < timedelta(seconds=TARGET_S / 2) and spool_partial(gw, 1, name).exists():
                return upload, t
        return None

    try:
        upload, start = wait_for("a segment being streamed", streaming, 60, every_s=0.05)
        gw.kill()
        kept = (recordings / "incoming" / f"{upload}.upload").stat().st_size
        assert hub.query("SELECT status, length FROM edge_uploads WHERE id = ?", upload)[0] == ("open", 0)
        gw.start()
        wait_for("the cut segment stored", lambda: hub.query(
            "SELECT status FROM edge_uploads WHERE id = ?", upload)[0][0] == "done", 90)
        wait_for("two segments after it", lambda: sum(t > start for t, _ in hub_segments(hub, cam)) >= 2, 60)
    finally:
        gw.stop()
        hub.stop()
    rows = [p for t, p in hub_segments(hub, cam) if t == start]
    assert len(rows) == 1, f"the cut segment is on the hub {len(rows)} times"
    entry = journal(gw)[start]  # the gateway's recovered segment, digested when it was recovered
    assert entry["session"] == "recovered"
    digest = sha256_file(recordings / rows[0])
    assert digest == entry["sha256"]
    length, received, resumes = hub.query("SELECT length, received_bytes, resumes FROM edge_uploads WHERE id = ?",
                                          upload)[0]
    # Continued from the hub's offset, not restarted: the streamed bytes were the start of the same file (the
    # gateway's recovery keeps every complete fragment, and only complete ones were streamed; it may be all).
    assert 0 < kept <= length and received == length and resumes >= 1, (kept, length, received, resumes)
    starts = [t for t, _ in hub_segments(hub, cam)]
    assert len(starts) == len(set(starts)), "a segment is on the hub twice"
    assert not (recordings / (rows[0] + ".partial")).exists(), "the cut stream's live name went with it"
