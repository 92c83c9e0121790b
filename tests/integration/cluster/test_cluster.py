"""Recorders on a 3-node Ray cluster: node loss, node join and controller failover, checked in the index.

The cluster, the RTSP server and the controller run in a network namespace of this test's own with only
loopback (Ray otherwise advertises the machine's external address); PostgreSQL is reached from inside
through its Unix socket, and checked from here over TCP. The database is the independent oracle: who
recorded what is read from segment and gap rows, not from what the controller says about itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from civicam.audit.log import Actor
from civicam.context import open_context
from civicam.registry import service as registry
from civicam.storage.factory import open_store
from civicam.storage.models import Gap, Segment
from support.databases import PG_ADMIN, PostgresTemplates
from support.frames import first_break, frame_digests, played_frames
from support.hub import REPO, make_settings
from support.rtsp import gst_rtsp_available, make_h264_file
from support.services import require

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.rtsp, pytest.mark.timeout(240)]

CAMERAS = 30
RTSP_PORT = 8554  # the namespace is new: every port is free in it
ACTOR = Actor(name="test", source="pytest", role="admin")
SCENARIO = Path(__file__).with_name("scenario.py")
RESUME_WITHIN = timedelta(seconds=15)


def netns_available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"civicam-probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False)
    if made.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return True


def pg_socket_dir() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN) as conn:
            row = conn.execute("SHOW unix_socket_directories").fetchone()
    except psycopg.OperationalError:
        return None
    first = str(row[0]).split(",")[0].strip() if row else ""
    return first if first and Path(first).is_dir() else None


@pytest.fixture
def netns() -> Iterator[str]:
    require(netns_available(), "network namespaces (root and iproute2's ip netns)")
    name = f"civicam-ray-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        # Whatever is still running in the namespace is ours (Ray daemons, the RTSP server): end it by pid.
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], check=False)


def seed(url_tcp: str, data_dir: Path) -> list[int]:
    ctx = open_context(make_settings(data_dir, url_tcp), create=True)
    try:
        with ctx.db.session() as s:
            region = registry.add_region(s, ACTOR, "city")
            site = registry.add_site(s, ACTOR, region, "station", "Contact", "contact@example.org")
            ids = []
            for n in range(CAMERAS):
                cam = registry.add_camera(s, ACTOR, ctx.secrets, site.id, f"cam{n}",
                                          f"rtsp://127.0.0.1:{RTSP_PORT}/cam{n}")
                cam.status = "accepted"
                s.flush()
                ids.append(cam.id)
        return ids
    finally:
        ctx.close()


def run_scenario(netns: str, config: dict[str, Any], log: Path) -> dict[str, Any]:
    # RAY_TMPDIR: Ray keeps its sessions and the "current cluster" file there (else under /tmp/ray).
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_DEDUP_LOGS": "0", "RAY_TMPDIR": config["ray_temp"]}
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, str(SCENARIO), json.dumps(config)],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=200)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    tail = log.read_text(encoding="utf-8", errors="replace")[-6000:]
    assert proc.returncode == 0 and lines, f"scenario failed ({proc.returncode}):\n{tail}"
    return dict(json.loads(lines[-1]))


def test_node_loss_join_and_controller_failover(
    netns: str, postgres_templates: PostgresTemplates | None, tmp_path: Path
) -> None:
    require(importlib.util.find_spec("ray") is not None, "Ray (pip install 'civicam[cluster]')")
    require(gst_rtsp_available(), "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    require(postgres_templates is not None, "PostgreSQL at 127.0.0.1:5432")
    assert postgres_templates is not None
    socket_dir = pg_socket_dir()
    require(socket_dir is not None, "PostgreSQL's Unix socket (reached from inside the namespace)")
    url_tcp = postgres_templates.fresh()
    try:
        name = url_tcp.rsplit("/", 1)[1]
        data_dir = tmp_path / "data"
        cams = seed(url_tcp, data_dir)
        # Small and cheap to serve: the server packetises a looped file, nothing is encoded per camera.
        clip = make_h264_file(tmp_path / "clip.h264", width=320, height=240, fps=10, seconds=4, bitrate_kbps=300)
        mounts = [{"path": f"/cam{n}", "source": "file", "file": str(clip), "fps": 10, "shared": True}
                  for n in range(CAMERAS)]
        ray_temp = Path("/tmp") / f"civicam-ray-{uuid.uuid4().hex[:8]}"  # short: Ray's socket paths are long
        ray_temp.mkdir()
        config = {
            "cameras": cams, "mounts": mounts, "rtsp_port": RTSP_PORT, "ray_temp": str(ray_temp),
            "settings": {
                "data_dir": str(data_dir),
                "database_url": f"postgresql+psycopg://postgres@/{name}?host={socket_dir}",
                "recording": {"segment_target_s": 2.0, "min_free_bytes": 0, "refresh_interval_s": 1.0,
                              "backoff_min_s": 0.2, "backoff_max_s": 1.0, "connect_timeout_s": 4.0},
                # Analytics on, one camera per node at 1 fps: enough for its health to be
                # real on every node without its CPU deciding the recording figures on two shared cores.
                "analytics": {"enabled": True, "fps": 1.0, "poll_interval_s": 1.0},
                "cluster": {"reconcile_interval_s": 0.5, "ping_timeout_s": 8.0, "analytics_per_core": 1.0},
            },
        }
        try:
            report = run_scenario(netns, config, tmp_path / "scenario.log")
            (tmp_path / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        finally:
            shutil.rmtree(ray_temp, ignore_errors=True)
        figures = check(report, url_tcp, data_dir, clip)
        (tmp_path / "figures.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    finally:
        postgres_templates.drop(url_tcp)


def describe(gaps: list[Gap]) -> str:
    return "; ".join(f"{g.reason} {g.start.isoformat()} .. {g.end.isoformat() if g.end else 'open'} ({g.detail})"
                     for g in gaps)


def when(report: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(report[key])


def check(report: dict[str, Any], url_tcp: str, data_dir: Path, clip: Path) -> dict[str, float]:
    """Assert every outcome in the index; returns the measured intervals (seconds) for the docs."""
    figures: dict[str, float] = {}
    cams: list[int] = report["cameras"]
    ctx = open_context(make_settings(data_dir, url_tcp))
    try:
        with ctx.db.session() as s:
            segs = s.execute(select(Segment).order_by(Segment.camera_id, Segment.start)).scalars().all()
            gaps = s.execute(select(Gap).order_by(Gap.camera_id, Gap.start)).scalars().all()
    finally:
        ctx.close()
    by_cam: dict[int, list[Segment]] = {c: [] for c in cams}
    for seg in segs:
        by_cam[seg.camera_id].append(seg)
    gaps_of: dict[int, list[Gap]] = {c: [] for c in cams}
    for gap in gaps:
        gaps_of[gap.camera_id].append(gap)
    t_remove, t_add, t_kill, t_end = (when(report, k) for k in ("t_remove", "t_add", "t_kill", "t_end"))

    # The recording health the API shows in cluster mode: every camera, online, from the workers.
    assert report["health"] == {str(c): "online" for c in cams}

    # Never two recorders for one camera: its segments never overlap, and its sequence never repeats.
    for cam, rows in by_cam.items():
        assert [r.seq for r in rows] == list(range(len(rows))), f"camera {cam}: sequence numbers repeat or skip"
        for a, b in zip(rows, rows[1:], strict=False):
            assert b.start >= a.end - timedelta(milliseconds=150), f"camera {cam}: two recorders overlapped"

    # 1. Node loss: each lost camera recorded again within 15 s, the interval recorded as a closed gap.
    lost = set(report["lost"])
    assert len(lost) == 10
    for cam in lost:
        first_after = next(r for r in by_cam[cam] if r.start >= t_remove)
        took = first_after.start - t_remove
        assert took <= RESUME_WITHIN, f"camera {cam} resumed {took} after its node died"
        figures["resume_max_s"] = max(figures.get("resume_max_s", 0.0), took.total_seconds())
        last_before = [r for r in by_cam[cam] if r.end <= t_remove + timedelta(seconds=1)][-1]
        gap = [g for g in gaps_of[cam] if last_before.end - timedelta(seconds=1) <= g.start < t_add]
        assert len(gap) == 1, f"camera {cam}: expected one gap for the node loss, got {describe(gap)}"
        assert gap[0].reason == "recorder_down" and gap[0].end == first_after.start
        assert gap[0].start == max(r.end for r in by_cam[cam] if r.end <= gap[0].start)
    # The cameras of the surviving nodes were not touched by it.
    for cam in set(cams) - lost:
        assert not [g for g in gaps_of[cam] if t_remove - timedelta(seconds=5) <= g.start < t_add], \
            f"camera {cam} on a surviving node had a gap"

    # 2. Node join: 10 cameras moved to the new node, make-before-break: no gap at all, for them as for
    # the 20 others. Every camera's index covers the window without a hole or an overlap ...
    # (From a second before the join: the lost cameras recorded again before it, 3 s or more after the kill.)
    moved = set(report["moved"])
    assert len(moved) == 10 and sorted(len(c) for c in report["after_add"].values()) == [10, 10, 10]
    window = t_add - timedelta(seconds=1)
    for cam in cams:
        assert not [g for g in gaps_of[cam] if g.start >= window], f"camera {cam} interrupted: {describe(gaps_of[cam])}"
        during = [r for r in by_cam[cam] if r.end >= window]
        assert during and during[-1].end >= t_end - timedelta(seconds=6)
        for a, b in zip(during, during[1:], strict=False):
            assert abs(b.start - a.end) <= timedelta(milliseconds=150), f"camera {cam}: {a.end} -> {b.start}"
    # ... and the recording of a moved camera changes session (the new node's recorder) exactly once, with
    # what playback shows across it checked against the clip the server loops (the independent oracle).
    clip_frames = frame_digests(clip)
    assert len(set(clip_frames)) == len(clip_frames), "the clip's frames must be distinct for this check"
    store = open_store(make_settings(data_dir, url_tcp))
    for cam in moved:
        rows = [r for r in by_cam[cam] if r.end >= window]
        turns = [(a, b) for a, b in zip(rows, rows[1:], strict=False) if a.session != b.session]
        assert len(turns) == 1, f"camera {cam}: expected one handover, got {len(turns)}"
        old, new = turns[0]
        delta = (new.start - old.end).total_seconds()
        figures["handover_gap_max_s"] = max(figures.get("handover_gap_max_s", 0.0), delta)
        figures["handover_overlap_max_s"] = max(figures.get("handover_overlap_max_s", 0.0), -delta)
        assert abs(delta) < 0.001, f"camera {cam}: the new node's first segment does not continue the old one's"
        frames = played_frames(store, rows, old.end - timedelta(seconds=2.5), old.end + timedelta(seconds=2.5),
                               tmp=data_dir / f"handover-{cam}.mp4")
        steps = [(b[0] - a[0]).total_seconds() for a, b in zip(frames, frames[1:], strict=False)]
        assert frames and min(steps) > 0.05 and max(steps) < 0.15, f"camera {cam}: frame steps {steps}"
        broken = first_break([d for _, d in frames], clip_frames)
        assert broken is None, f"camera {cam}: frame {broken} of the handover window repeats or skips the stream"
        figures["handover_frames_checked"] = figures.get("handover_frames_checked", 0) + len(frames)

    # 3. Controller failover: the workers hold exactly what they held, and no camera started again.
    assert report["before_kill"] == report["after_kill"]
    held = [c for cs in report["after_kill"].values() for c in cs]
    assert sorted(held) == sorted(cams), "a camera is held twice or by nobody after the takeover"
    for cam in cams:
        assert not [g for g in gaps_of[cam] if g.start >= t_kill], f"camera {cam} restarted by the new controller"
        assert len({r.session for r in by_cam[cam] if r.start >= t_kill}) == 1
    # Analytics health in cluster mode: the cameras the workers analyse, each with work done, none failing,
    # and never more segments analysed than were recorded.
    health = report["analytics_health"]
    assert sorted(int(c) for c in health) == report["analysing"] and len(health) == 3
    for cam, h in health.items():
        assert 1 <= h["analyzed"] <= len(by_cam[int(cam)]) and h["errors"] == 0 and h["lag_s"] is not None
    assert report["total_s"] < 120
    return figures
