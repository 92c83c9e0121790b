"""Site gateways against a hub, all real processes on loopback: the hub ``civicam serve --tls``, gateways
``civicam edge run``, cameras from the GStreamer RTSP server. Oracles: the gateway's own journal of what it
recorded (with the SHA-256 taken at recording time), digests the test computes of the hub's files, and the
hub's database read directly."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from civicam.auth.tls import generate_self_signed
from civicam.ingest.uploads import encode_metadata
from support.edge import Gateway, Hub, Relay, sha256_file, wait_for
from support.rtsp import RtspServer, make_h264_file
from support.rtsp_fixtures import SECURE_PASSWORD, SECURE_USER, STANDARD_MOUNTS
from support.services import require

pytestmark = [pytest.mark.rtsp, pytest.mark.slow, pytest.mark.timeout(480)]  # a 2-minute outage inside


@pytest.fixture
def cameras(rtsp_available: bool) -> Iterator[RtspServer]:
    """An RTSP server of the test's own (a SIGKILLed gateway's reset connections stay within it)."""
    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    with RtspServer([m for m in STANDARD_MOUNTS if m["path"] in ("/good", "/secure", "/open")]) as server:
        yield server

TARGET_S = 2.0
OUTAGE_S = 120.0  # the "hub stopped for 2 minutes"


def hub_segments(hub: Hub, camera_id: int) -> list[dict[str, Any]]:
    rows = hub.query("SELECT id, start, \"end\", path, bytes, seq FROM recording_segments WHERE camera_id = ? "
                     "ORDER BY start", camera_id)
    return [{"id": r[0], "start": _utc(r[1]), "end": _utc(r[2]), "path": r[3], "bytes": r[4], "seq": r[5]}
            for r in rows]


def _utc(value: str) -> datetime:
    from datetime import UTC

    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def camera_id(hub: Hub, site_id: int, name: str) -> int | None:
    rows = hub.query("SELECT id FROM cameras WHERE site_id = ? AND name = ?", site_id, name)
    return int(rows[0][0]) if rows else None


def journal_by_start(gw: Gateway, local_id: int | None = None) -> dict[datetime, dict[str, Any]]:
    """What the gateway recorded, one entry per segment (a crash may journal a segment twice: same digest);
    ``local_id``: of that camera only (the gateway's own number for it)."""
    out: dict[datetime, dict[str, Any]] = {}
    for entry in gw.recorded():
        if local_id is not None and entry["local_id"] != local_id:
            continue
        start = datetime.fromisoformat(entry["start"])
        if start in out:
            assert out[start]["sha256"] == entry["sha256"], "one segment journalled with two digests"
        out[start] = entry
    return out


def assert_exactly_once(hub: Hub, gw: Gateway, cam: int, local_id: int | None = None) -> list[dict[str, Any]]:
    """Every segment the gateway recorded is on the hub once with the same bytes, or still waits in its spool
    (``local_id``: the gateway's number for hub camera ``cam``, where it has several)."""
    segs = hub_segments(hub, cam)
    starts = [s["start"] for s in segs]
    assert len(starts) == len(set(starts)), "a segment is on the hub twice"
    journal = journal_by_start(gw, local_id)
    waiting = {p.name for p in gw.waiting()}
    for seg in segs:
        entry = journal.get(seg["start"])
        assert entry is not None, f"the hub has a segment the gateway never recorded: {seg['path']}"
        assert sha256_file(hub.data_dir / "recordings" / seg["path"]) == entry["sha256"], seg["path"]
    on_hub = set(starts)
    missing = [e for s, e in journal.items() if s not in on_hub and Path(e["path"]).name not in waiting]
    return missing


def _size(path: Path) -> int:
    """Bytes of a spooled file, 0 once gone: the gateway deletes a segment when the hub acknowledges it,
    between any listing and a stat."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def contiguous(segs: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
    """The holes between consecutive segments (more than a millisecond)."""
    return [(a["end"], b["start"]) for a, b in zip(segs, segs[1:], strict=False)
            if b["start"] - a["end"] > timedelta(milliseconds=1)]


def test_hub_outage_sigkill_and_quota(tmp_path: Path, cameras: RtspServer) -> None:
    """Hub stopped for 2 minutes while two gateways record: afterwards every segment is on the hub exactly
    once with equal digests and no gap (gateway A, killed with SIGKILL mid-upload during the catch-up and
    restarted), live first; gateway B's small quota dropped the oldest and the hub has one gap with the
    dropped segments' bounds. Camera credentials never reach the hub."""
    hub = Hub(tmp_path / "hub")
    hub.setup()
    site_a, site_b = hub.add_site("Mall"), hub.add_site("Station")
    tok_a, tok_b = hub.token(site_a), hub.token(site_b)
    hub.start()
    gw_a = Gateway(tmp_path / "gw-a", hub, tok_a["hub_fingerprint"], tok_a["token"],
                   [{"name": "Door", "url": cameras.url("/secure"), "username": SECURE_USER,
                     "password_env": "DOOR_PASSWORD"}], chunk_bytes=32 * 1024)
    gw_a.env["DOOR_PASSWORD"] = SECURE_PASSWORD
    quota = 700_000
    gw_b = Gateway(tmp_path / "gw-b", hub, tok_b["hub_fingerprint"], tok_b["token"],
                   [{"name": "Hall", "url": cameras.url("/good")}], quota_bytes=quota)
    gw_a.start()
    gw_b.start()
    try:
        cam_a = wait_for("gateway A's camera on the hub", lambda: camera_id(hub, site_a, "Door"), 60)
        cam_b = wait_for("gateway B's camera on the hub", lambda: camera_id(hub, site_b, "Hall"), 60)
        wait_for("segments of both cameras", lambda: len(hub_segments(hub, cam_a)) >= 2
                 and len(hub_segments(hub, cam_b)) >= 2, 60)

        # --- the outage: the hub is stopped for two minutes -----------------------------------------
        hub.stop()
        stopped = time.monotonic()
        peak_b = 0
        while time.monotonic() - stopped < OUTAGE_S:
            peak_b = max(peak_b, sum(_size(p) for p in gw_b.waiting()))
            time.sleep(1.0)
        # Kept recording: the spooled segments cover the outage (stream time; a loaded box's encoder may
        # stretch GOPs, so their number is not the measure).
        names = {p.name for p in gw_a.waiting()}
        covered = sum((datetime.fromisoformat(e["end"]) - datetime.fromisoformat(e["start"])).total_seconds()
                      for e in journal_by_start(gw_a).values() if Path(e["path"]).name in names)
        assert covered >= OUTAGE_S * 0.8, f"gateway A kept recording: {covered:.0f} s spooled in the outage"
        biggest = max(e["bytes"] for e in gw_b.recorded())
        assert peak_b <= quota + biggest, f"gateway B's spool reached {peak_b} bytes over its quota {quota}"
        restarted = datetime.now().astimezone()  # before the start: a gateway may call as soon as it listens
        hub.start()

        # --- catch-up; gateway A is killed mid-upload and restarted ----------------------------------
        incoming = hub.data_dir / "recordings" / "incoming"

        open_a = {r[0] for r in hub.query("SELECT id FROM edge_uploads WHERE camera_id = ?", cam_a)}

        def partial_upload() -> str | None:
            for p in incoming.glob("*.upload"):
                upload = p.name.removesuffix(".upload")
                if upload not in open_a and hub.query("SELECT id FROM edge_uploads WHERE id = ? AND camera_id = ?",
                                                      upload, cam_a):
                    open_a.add(upload)
                if upload in open_a and _size(p) > 0:
                    return upload
            return None

        killed_upload = wait_for("an upload of gateway A in progress", partial_upload, 60, every_s=0.02)
        gw_a.kill()
        state = hub.query("SELECT status, length FROM edge_uploads WHERE id = ?", killed_upload)[0]
        assert state[0] == "open", "gateway A was killed with an upload open"
        gw_a.start()
        wait_for("both spools drained", lambda: len(gw_a.waiting()) <= 2 and len(gw_b.waiting()) <= 2, 120)
        # Live segments go first, so the killed upload's (older) segment may still be among the last ones
        # waiting: it must be finished in the end, from its offset.
        wait_for("the killed upload finished", lambda: hub.query(
            "SELECT status FROM edge_uploads WHERE id = ?", killed_upload)[0][0] == "done", 90)
    finally:
        gw_a.stop()
        gw_b.stop()
    hub.stop()

    # Gateway A: exactly once, digests equal, no gap across the outage.
    missing = assert_exactly_once(hub, gw_a, cam_a)
    assert not missing, f"segments recorded by gateway A but neither on the hub nor spooled: {missing}"
    # Segments still spooled at the end (live first leaves the last older one for later) count as delivered-to-be.
    waiting = {p.name for p in gw_a.waiting()}
    spooled = [{"start": datetime.fromisoformat(e["start"]), "end": datetime.fromisoformat(e["end"])}
               for e in journal_by_start(gw_a).values() if Path(e["path"]).name in waiting]
    segs_a = sorted(hub_segments(hub, cam_a) + spooled, key=lambda x: x["start"])
    holes = contiguous(segs_a)
    # The only hole allowed is where gateway A itself was down (SIGKILL to restart: not recording).
    assert len(holes) <= 1, f"holes in gateway A's recording on the hub: {holes}"
    for start, end in holes:
        assert start >= restarted - timedelta(seconds=10), f"a hole during the hub's outage: {start}..{end}"
    assert not hub.query("SELECT id FROM recording_gaps WHERE camera_id = ?", cam_a)
    received, length, status = hub.query("SELECT received_bytes, length, status FROM edge_uploads WHERE id = ?",
                                         killed_upload)[0]
    # It was half-way when the gateway died; it was finished from its offset: no byte was sent twice.
    assert (status, received) == ("done", length), (status, received, length)

    # Live first: the first segment sent after the restart is a live one, not the oldest of the backlog.
    created = sorted((_utc(c), _utc(s)) for s, c in hub.query(
        "SELECT start, created_at FROM edge_uploads WHERE camera_id = ?", cam_a))
    after = [start for at, start in created if at >= restarted]
    assert after, "uploads created after the restart"
    assert after[0] >= restarted - timedelta(seconds=4 * TARGET_S), f"first upload after the outage: {after[0]}"
    assert after[0] > min(after), "and the backlog followed"

    # Gateway B: the oldest were dropped; one gap on the hub with exactly their bounds.
    missing_b = assert_exactly_once(hub, gw_b, cam_b)
    assert missing_b, "gateway B dropped segments for its quota"
    gaps = hub.query("SELECT start, \"end\", reason FROM recording_gaps WHERE camera_id = ?", cam_b)
    assert len(gaps) == 1 and gaps[0][2] == "edge_quota", gaps
    gap_start, gap_end = _utc(gaps[0][0]), _utc(gaps[0][1])
    dropped_start = min(datetime.fromisoformat(e["start"]) for e in missing_b)
    dropped_end = max(datetime.fromisoformat(e["end"]) for e in missing_b)
    assert (gap_start, gap_end) == (dropped_start, dropped_end)
    segs_b = hub_segments(hub, cam_b)
    assert contiguous(segs_b) == [(gap_start, gap_end)], "the gap is the only hole, and it has the right bounds"

    # Camera credentials stay at the site.
    assert SECURE_PASSWORD.encode() not in (hub.data_dir / "civicam.db").read_bytes()
    assert SECURE_PASSWORD not in hub.log.read_text(errors="replace")
    assert hub.query("SELECT url FROM cameras WHERE id = ?", cam_a)[0][0].startswith("edge://")


def test_link_cut_resume_and_refusals(tmp_path: Path, cameras: RtspServer) -> None:
    """The link cut mid-upload resumes at its offset; a wrong certificate, a revoked token, another site's
    camera and a tampered segment are refused with clear errors, the spool kept, retried where it helps."""
    hub = Hub(tmp_path / "hub")
    hub.setup()
    site_a, site_b = hub.add_site("Mall"), hub.add_site("Station")
    tok_a, tok_b = hub.token(site_a), hub.token(site_b)
    hub.start()
    relay = Relay(hub.port, rate=60_000)
    relay.open()
    # Whole-segment uploads only: the resumable path is this test's subject (a stream cut mid-segment is
    # tests/e2e/test_edge_live.py's), and a streamed upload has no length to resume to until its end.
    gw_a = Gateway(tmp_path / "gw-a", hub, tok_a["hub_fingerprint"], tok_a["token"],
                   [{"name": "Door", "url": cameras.url("/good")}], hub_url=f"https://127.0.0.1:{relay.port}",
                   live_parts="off")
    other = generate_self_signed(tmp_path / "other.crt", tmp_path / "other.key")
    # A camera of its own: two gateways probing one mount at the same instant is when the GStreamer test server
    # was seen to die (2 full-suite runs of 4), leaving gateway A nothing to upload.
    gw_b = Gateway(tmp_path / "gw-b", hub, other, tok_b["token"], [{"name": "Hall", "url": cameras.url("/open")}])
    gw_a.start()
    gw_b.start()
    incoming = hub.data_dir / "recordings" / "incoming"
    try:
        cam_a = wait_for("gateway A's camera", lambda: camera_id(hub, site_a, "Door"), 60)

        # --- the link is cut mid-upload, then restored -----------------------------------------------
        def partial() -> Path | None:
            for p in incoming.glob("*.upload"):
                if _size(p) > 16_000:
                    return p
            return None

        part = wait_for("an upload half-way", partial, 60, every_s=0.05)
        relay.cut()
        upload_id = part.name.removesuffix(".upload")
        # The hub keeps what it had: once it sees the reset, the upload is recorded with those bytes (a segment's
        # first request creates it when its body ends, however it ends).
        row = wait_for("the cut upload kept by the hub", lambda: hub.query(
            "SELECT status, length, received_bytes FROM edge_uploads WHERE id = ?", upload_id), 30, every_s=0.05)[0]
        kept = part.stat().st_size
        assert row[0] == "open" and 0 < kept == row[2] < row[1], (row, kept)
        relay.rate = None
        relay.reopen()
        done = wait_for("the cut upload completed", lambda: hub.query(
            "SELECT received_bytes, resumes, length FROM edge_uploads WHERE id = ? AND status = 'done'", upload_id), 60)
        received, resumes, length = done[0]
        assert resumes >= 1, "the upload continued at its offset"
        assert received == length, f"the hub received {received} bytes for a {length}-byte segment: it restarted"

        # --- a revoked token: refused, the spool kept; the new token is picked up without a restart ---
        hub.token(site_a, "--rotate")  # the gateway still has the old one
        wait_for("the refusal in gateway A's log", lambda: "revoked or unknown" in gw_a.log_text(), 30)
        wait_for("segments kept in gateway A's spool", lambda: len(gw_a.waiting()) >= 3, 30)
        # Tamper with a spooled segment: same size, one byte changed after its digest was taken.
        victim = gw_a.waiting()[0]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        new = hub.token(site_a, "--rotate")
        gw_a.token_file.write_text(new["token"])
        quarantine = gw_a.spool / "quarantine"
        wait_for("the tampered segment quarantined", lambda: any(quarantine.glob("*.mp4")), 60)
        wait_for("gateway A's spool drained", lambda: len(gw_a.waiting()) <= 2, 60)
        victim_start = next(datetime.fromisoformat(e["start"]) for e in gw_a.recorded()
                            if Path(e["path"]).name == victim.name)
        assert victim_start not in {s["start"] for s in hub_segments(hub, cam_a)}
        assert "digest_mismatch" in gw_a.log_text() or "quarantined" in gw_a.log_text()

        # --- wrong fingerprint: gateway B never talks to the hub, keeps recording, keeps retrying -----
        assert camera_id(hub, site_b, "Hall") is None
        assert gw_b.log_text().count("not the pinned") >= 2, "refused, and retried"
        assert len(gw_b.waiting()) >= 1

        # --- raw requests: another site's camera, a digest mismatch --------------------------------
        with httpx.Client(base_url=hub.url, verify=False, timeout=10) as http:
            meta = {"camera_id": cam_a, "start": "2030-01-01T00:00:00+00:00", "end": "2030-01-01T00:00:02+00:00",
                    "sha256": "0" * 64, "seq": 999, "frames": 50, "keyframes": 1, "init_bytes": 10, "codec": "h264",
                    "width": 1280, "height": 720, "session": "x"}
            headers = {"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Upload-Metadata": encode_metadata(meta)}
            r = http.post("/api/edge/uploads", headers={**headers, "Authorization": f"Bearer {tok_b['token']}"})
            assert r.status_code == 403 and r.json()["code"] == "wrong_site"
            assert f"does not belong to site {site_b}" in r.json()["detail"]
            r = http.post("/api/edge/uploads", headers={**headers, "Authorization": f"Bearer {tok_a['token']}"})
            assert r.status_code == 401 and "revoked" in r.json()["detail"]
            auth = {"Authorization": f"Bearer {new['token']}"}
            r = http.post("/api/edge/uploads", headers={**headers, **auth})
            assert r.status_code == 201, r.text
            loc = r.headers["Location"]
            r = http.patch(loc, content=b"x" * 100, headers={**auth, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                                                               "Content-Type": "application/offset+octet-stream"})
            assert r.status_code == 460 and r.json()["code"] == "digest_mismatch", r.text
            assert "nothing was stored" in r.json()["detail"]
            head = http.head(loc, headers={**auth, "Tus-Resumable": "1.0.0"})
            assert head.headers["Upload-Offset"] == "0", "the upload can be sent again from the start"
            assert not hub.query("SELECT id FROM recording_segments WHERE seq = 999")
        # The hub's access log keeps every refusal above and none of the accepted segment requests
        # (civicam.server.RoutineUploads); other gateway requests are still logged.
        access = re.findall(r'"(\w+) (/api/edge/\S*) HTTP/[\d.]+" (\d{3})', hub.log.read_text(errors="replace"))
        uploads = {int(code) for _, path, code in access if path.startswith("/api/edge/uploads")}
        assert {401, 403, 460} <= uploads and not {c for c in uploads if 200 <= c < 300}, sorted(uploads)
        assert any(path == "/api/edge/cameras" for _, path, _ in access), "other gateway requests are logged"
    finally:
        gw_a.stop()
        gw_b.stop()
        relay.cut()
        hub.stop()
    missing = assert_exactly_once(hub, gw_a, cam_a)
    quarantined = {p.name.split("_")[-1] for p in quarantine.glob("*.mp4")}
    assert [Path(e["path"]).name for e in missing] == sorted(quarantined), "only the tampered segment is not on the hub"


def test_gateway_recorder_gap_reaches_the_hub(tmp_path: Path, rtsp_available: bool) -> None:
    """The gateway's camera dies (its RTSP server killed) and comes back: the hub's index shows the gateway
    recorder's gap, open while the camera is lost, then closed with the bounds of the hole in what the
    gateway recorded (its journal), like a gap of a camera the hub pulls itself."""
    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    server = RtspServer([m for m in STANDARD_MOUNTS if m["path"] == "/good"]).start()
    hub = Hub(tmp_path / "hub")
    hub.setup()
    site = hub.add_site("Depot")
    tok = hub.token(site)
    hub.start()
    gw = Gateway(tmp_path / "gw", hub, tok["hub_fingerprint"], tok["token"],
                 [{"name": "Yard", "url": server.url("/good")}])
    gw.start()

    def gaps(cam: int) -> list[tuple[Any, ...]]:
        return hub.query("SELECT start, \"end\", reason FROM recording_gaps WHERE camera_id = ?", cam)

    try:
        cam = wait_for("the gateway's camera on the hub", lambda: camera_id(hub, site, "Yard"), 60)
        wait_for("two segments on the hub", lambda: len(hub_segments(hub, cam)) >= 2, 60)
        assert gaps(cam) == []
        server.kill()
        (opened,) = wait_for("an open gap on the hub", lambda: gaps(cam), 60)
        assert opened[1] is None and opened[2] == "stream_lost", opened
        server.start()  # same port: the gateway's recorder finds the camera again
        (closed,) = wait_for("the gap closed", lambda: [g for g in gaps(cam) if g[1] is not None], 90)
        gap_start, gap_end = _utc(closed[0]), _utc(closed[1])
        wait_for("segments after the gap on the hub",
                 lambda: sum(s["start"] >= gap_end for s in hub_segments(hub, cam)) >= 2, 60)
    finally:
        gw.stop()
        hub.stop()
        server.stop()
    assert gap_start == _utc(opened[0]), "the open gap was closed, not replaced"
    missing = assert_exactly_once(hub, gw, cam)
    assert not missing, missing
    recorded = sorted(({"start": datetime.fromisoformat(e["start"]), "end": datetime.fromisoformat(e["end"])}
                       for e in journal_by_start(gw).values()), key=lambda x: x["start"])
    # The oracle is the gateway's own journal: the one hole in what it recorded is the hub's gap.
    assert contiguous(recorded) == [(gap_start, gap_end)], (contiguous(recorded), gap_start, gap_end)
    assert len(hub.query("SELECT id FROM recording_gaps WHERE camera_id = ?", cam)) == 1, "one gap, no other"


def test_cameras_of_a_site_share_upload_requests(tmp_path: Path, rtsp_available: bool) -> None:
    """Three cameras behind one gateway: their finished segments go to the hub together (edge/batching.py),
    fewer requests than segments, and every segment is on the hub exactly once with its recorded digest,
    one upload row each, in order, without holes."""
    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    # Three cameras from one pre-encoded clip, served shared (as bench/edge.py does): three clients opening
    # the live test source at once had the test server encode three 720p streams on a loaded machine.
    clip = make_h264_file(tmp_path / "clip.h264", seconds=6)
    cameras = RtspServer([{"path": f"/cam{i}", "source": "file", "file": str(clip), "fps": 25, "shared": True}
                          for i in range(3)])
    cameras.start()
    hub = Hub(tmp_path / "hub")
    hub.setup()
    site = hub.add_site("Mall")
    tok = hub.token(site)
    hub.start()
    names = ["Door", "Hall", "Lift"]
    # A window as long as a segment: each batch waits for every camera's next segment.
    gw = Gateway(tmp_path / "gw", hub, tok["hub_fingerprint"], tok["token"],
                 [{"name": n, "url": cameras.url(f"/cam{i}")} for i, n in enumerate(names)], live_parts="off",
                 batch_window_s=TARGET_S)
    gw.start()
    try:
        ids = [wait_for(f"camera {n} on the hub", lambda n=n: camera_id(hub, site, n), 60) for n in names]
        wait_for("four segments of every camera", lambda: all(len(hub_segments(hub, c)) >= 4 for c in ids), 90)
        batches = wait_for("a health report counting the batches",
                           lambda: (gw.health().get("batches") or {}).get("requests") or None, 30)
        assert batches >= 1
    finally:
        gw.stop()
        hub.stop()
        cameras.stop()
    report = gw.health()["batches"]
    total = sum(len(hub_segments(hub, c)) for c in ids)
    assert report["largest"] >= 2 and report["requests"] < report["segments"], report
    assert report["segments"] <= total, "the hub has every batched segment"
    local = {int(hub_id): int(mine) for mine, hub_id in
             json.loads((gw.spool / "cameras.json").read_text())["hub"].items()}
    for cam in ids:
        missing = assert_exactly_once(hub, gw, cam, local[cam])
        assert not missing, missing
        segs = hub_segments(hub, cam)
        assert contiguous(segs) == [], "no holes"
        assert [s["seq"] for s in segs] == sorted(s["seq"] for s in segs)
        rows = hub.query("SELECT status FROM edge_uploads WHERE camera_id = ?", cam)
        assert len(rows) == len(segs) and {r[0] for r in rows} == {"done"}, rows
