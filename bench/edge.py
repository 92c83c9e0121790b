"""Edge benchmark: one hub receiving from G gateways with C cameras each, against the hub pulling the same
G*C cameras itself; then a hub outage and the catch-up after it.

Cameras: 1280x720@25 H.264 at ~2 Mbit/s, a pre-encoded clip looped by the GStreamer RTSP test server (no
transcoding). Everything on loopback; the hub's analytics are off in both runs (ingest is what is compared).
Reported: hub CPU per camera-minute in both modes and their ratio (goal <= 1), gateway CPU (cores) and PSS
per camera (goal: 10 cameras in one core and 256 MB), upload lag p95 (segment end -> stored on the hub; goal
under two segment durations), and the catch-up time after an outage against its length. Usage::

    python bench/edge.py --gateways 20 --cameras 10 --seconds 60 --outage 120      # the issue's size
    python bench/edge.py --gateways 2 --cameras 3 --seconds 40 --outage 60         # scaled down (2 cores)
    python bench/edge.py --gateways 20 --cameras 10 --seconds 120 --replay         # the hub's side at that size
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from edge_replay import measure_replay, recorded_segments  # noqa: E402
from procstat import cpu_seconds, memory_kib  # noqa: E402

from support.edge import Gateway, Hub, wait_for  # noqa: E402
from support.rtsp import RtspServer, make_h264_file  # noqa: E402

SEGMENT_S = 4.0
HUB_CPUS: set[int] | None = None  # --pin: the hub's own CPU; everything else (cameras, gateways, this) on the rest


def pin_hub(pid: int) -> None:
    """Give every thread of the hub process the hub's CPU (threads it starts later inherit it)."""
    if HUB_CPUS is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), HUB_CPUS)
        except (ProcessLookupError, PermissionError):
            pass  # a thread that ended meanwhile


def _pull_hub(root: Path, urls: list[str]) -> Hub:
    from civicam.audit.log import Actor
    from civicam.config.settings import get_settings
    from civicam.context import open_context
    from civicam.registry import service

    hub = Hub(root)
    hub.setup()
    site = hub.add_site("Pulled")
    ctx = open_context(get_settings(data_dir=root))
    actor = Actor(name="bench", source="bench", role="admin")
    with ctx.db.session() as s:
        for i, url in enumerate(urls):
            cam = service.add_camera(s, actor, ctx.secrets, site, f"cam{i}", url)
            cam.status = "accepted"  # the probe is not what is measured
    ctx.close()
    return hub


def _segments(hub: Hub) -> dict[int, int]:
    return dict(hub.query("SELECT camera_id, COUNT(*) FROM recording_segments GROUP BY camera_id"))


def measure_pull(root: Path, urls: list[str], seconds: float) -> dict[str, Any]:
    hub = _pull_hub(root / "pull-hub", urls)
    hub.env["CIVICAM_RECORDING__SEGMENT_TARGET_S"] = str(SEGMENT_S)
    # Plain HTTP is enough here: the hub reads RTSP; nothing talks to its API during the window.
    with open(hub.log, "ab") as log:
        hub.proc = subprocess.Popen([*sys_civicam(), "serve", "--port", str(hub.port)], env=hub.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
    try:
        pin_hub(hub.proc.pid)
        # Start-up grows with the size (200 cameras connect, probe and cut a first segment each).
        wait_for("every pulled camera recording", lambda: len(_segments(hub)) == len(urls), max(120, 2 * len(urls)))
        assert hub.proc is not None
        pin_hub(hub.proc.pid)
        c0, t0 = cpu_seconds(hub.proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu, wall = cpu_seconds(hub.proc.pid) - c0, time.monotonic() - t0
    finally:
        hub.stop()
    return {"hub_cpu_s": cpu, "wall_s": wall, "hub_cpu_per_camera_min": cpu / len(urls) / (wall / 60)}


def sys_civicam() -> list[str]:
    return [sys.executable, "-m", "civicam"]


def _lags(hub: Hub, since: datetime) -> list[float]:
    rows = hub.query("SELECT \"end\", completed_at FROM edge_uploads WHERE completed_at IS NOT NULL")
    out = []
    for end, done in rows:
        e, d = (datetime.fromisoformat(x).replace(tzinfo=UTC) for x in (end, done))
        if e >= since:
            out.append((d - e).total_seconds())
    return out


def measure_edge(root: Path, urls: list[str], gateways: int, cameras: int, seconds: float,
                 outage: float, live_parts: str = "watched", batch_max: int = 16,
                 batch_window_s: float = 0.5) -> dict[str, Any]:
    hub = Hub(root / "edge-hub")
    hub.setup()
    gws: list[Gateway] = []
    for g in range(gateways):
        site = hub.add_site(f"Site {g}")
        tok = hub.token(site)
        cams = [{"name": f"cam{c}", "url": urls[g * cameras + c]} for c in range(cameras)]
        gws.append(Gateway(root / f"gw{g}", hub, tok["hub_fingerprint"], tok["token"], cams,
                           segment_target_s=SEGMENT_S, probe_seconds=2.0, backoff_max_s=5.0, health_interval_s=10.0,
                           live_parts=live_parts, batch_max=batch_max, batch_window_s=batch_window_s))
    hub.start()
    assert hub.proc is not None
    pin_hub(hub.proc.pid)
    for gw in gws:
        gw.start()
    try:
        wait_for("every gateway camera on the hub", lambda: len(_segments(hub)) == len(urls), max(180, 3 * len(urls)))
        assert hub.proc is not None
        pin_hub(hub.proc.pid)
        pids = [gw.proc.pid for gw in gws if gw.proc is not None]
        start = datetime.now(UTC)
        h0, g0, t0 = cpu_seconds(hub.proc.pid), [cpu_seconds(p) for p in pids], time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - t0
        hub_cpu = cpu_seconds(hub.proc.pid) - h0
        gw_cpu = [cpu_seconds(p) - c for p, c in zip(pids, g0, strict=True)]
        pss = [memory_kib(p)[1] for p in pids]
        lags = sorted(_lags(hub, start))
        p95 = lags[int(0.95 * (len(lags) - 1))] if lags else float("nan")
        result: dict[str, Any] = {
            "hub_cpu_s": hub_cpu, "wall_s": wall, "hub_cpu_per_camera_min": hub_cpu / len(urls) / (wall / 60),
            "gateway_cores_per_camera": statistics.mean(gw_cpu) / wall / cameras,
            "gateway_cores_per_gateway": statistics.mean(gw_cpu) / wall,
            "gateway_pss_mib_per_camera": statistics.mean(pss) / 1024 / cameras,
            "gateway_pss_mib_per_gateway": statistics.mean(pss) / 1024,
            "upload_lag_p95_s": p95, "upload_lag_median_s": statistics.median(lags) if lags else float("nan"),
            "uploads_in_window": len(lags),
        }
        if outage > 0:
            hub.stop()
            time.sleep(outage)
            backlog = sum(len(gw.waiting()) for gw in gws)
            back = time.monotonic()
            hub.start()
            assert hub.proc is not None
            pin_hub(hub.proc.pid)
            wait_for("the backlog delivered", lambda: all(len(gw.waiting()) <= cameras for gw in gws), 30 * outage)
            catch_up = time.monotonic() - back
            result.update(outage_s=outage, backlog_segments=backlog, catch_up_s=catch_up,
                          catch_up_per_outage=catch_up / outage)
    finally:
        for gw in gws:
            gw.stop()
        hub.stop()
    # Written by each gateway as it stops: its requests carrying finished segments together.
    reports = [gw.health().get("batches") or {} for gw in gws]
    result.update(batch_requests=sum(r.get("requests", 0) for r in reports),
                  batched_segments=sum(r.get("segments", 0) for r in reports),
                  largest_batch=max((r.get("largest", 0) for r in reports), default=0))
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--cameras", type=int, default=10, help="cameras per gateway")
    ap.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    ap.add_argument("--outage", type=float, default=120.0, help="hub outage length (0: none)")
    ap.add_argument("--live-parts", choices=("watched", "always", "off"), default="watched",
                    help="the gateways' live_parts: 'always' streams every camera's segment in progress (as if "
                    "every camera were watched live; nobody watches in this benchmark, so 'watched' sends whole "
                    "segments)")
    ap.add_argument("--pin", action="store_true",
                    help="the hub alone on CPU 0, the cameras' server, the gateways and this script on the others "
                    "(as deployed: a gateway runs at its site, not on the hub's cores); both modes alike")
    ap.add_argument("--batch-max", type=int, default=16,
                    help="the gateways' batch_max: most finished segments per request (1: one request each)")
    ap.add_argument("--batch-window", type=float, default=0.5, help="the gateways' batch_window_s")
    ap.add_argument("--replay", action="store_true",
                    help="no gateway processes: the hub receives their traffic replayed at the cameras' rate "
                    "(bench/edge_replay.py; the segments the pulling hub recorded), for sizes whose gateways do "
                    "not fit beside the hub and the cameras' server; no gateway figures; the outage's catch-up "
                    "paced as the gateways' batch sender paces it")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    args = ap.parse_args()
    if args.pin:
        global HUB_CPUS
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            ap.error("--pin needs at least two CPUs")
        HUB_CPUS = {cpus[0]}
        os.sched_setaffinity(0, set(cpus[1:]))  # inherited by the RTSP server and the gateways
    root = Path(tempfile.mkdtemp(prefix="civicam-bench-edge-"))
    n = args.gateways * args.cameras
    try:
        clip = make_h264_file(root / "clip.h264", seconds=10, bitrate_kbps=2000)
        mounts = [{"path": f"/cam{i}", "source": "file", "file": str(clip), "fps": 25, "shared": True}
                  for i in range(n)]
        with RtspServer(mounts) as server:
            urls = [server.url(f"/cam{i}") for i in range(n)]
            load0 = os.getloadavg()
            pull = measure_pull(root, urls, args.seconds)
            if not args.replay:
                edge = measure_edge(root, urls, args.gateways, args.cameras, args.seconds, args.outage,
                                    args.live_parts, args.batch_max, args.batch_window)
        if args.replay:  # after the cameras' server has stopped: the replay needs no cameras
            edge = measure_replay(root, recorded_segments(root / "pull-hub"), args.gateways, args.cameras,
                                  args.seconds, SEGMENT_S, pin_hub if args.pin else None, args.outage,
                                  args.batch_window)
        load1 = os.getloadavg()
        report = {"pinned": args.pin, "replayed": args.replay, "gateways": args.gateways,
                  "cameras_per_gateway": args.cameras, "cameras": n,
                  "live_parts": args.live_parts, "batch_max": args.batch_max, "batch_window_s": args.batch_window,
                  "segment_s": SEGMENT_S, "load_before": load0, "load_after": load1, "pull": pull, "edge": edge,
                  "hub_cpu_ratio_edge_vs_pull": edge["hub_cpu_per_camera_min"] / pull["hub_cpu_per_camera_min"]}
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    raise SystemExit(main())
