"""Camera wall benchmark: do blurred live tiles keep up with the clock on this machine?

N cameras (1280x720@25 H.264, ~2 Mbit/s, ``--faces`` real faces each, so blurring has its real work, and a
moving band) are served over loopback by the GStreamer RTSP test server, looping one clip encoded before the
run: a camera encodes on its own chip, so the cameras take next to no CPU of the two cores under test.
``--live-cameras`` encodes each camera live on this machine instead (time-coded, as bench/live_latency.py
does: ~0.15 cores a camera taken from the hub and the browser). A hub (``civicam serve``,
SQLite, fresh data directory, analytics **on** unless ``--no-analytics``) onboards and records them.
Debian's chromium opens the dashboard's camera wall (``/wall?n=N``) with the page's own players, blurred
as every operator sees them. Once every tile plays, for ``--seconds`` s the benchmark reads each tile's
``video.currentTime`` against the wall clock: a tile that keeps up advances as many seconds of video as
pass on the clock (reference: the clock itself, ratio 1.00x; goal >= 54 s per 60 s, 0.90x).

    python bench/wall.py [--cameras 4] [--seconds 60] [--faces 2] [--live-cameras] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

from live_latency import FPS, BenchError, Hub, launch_browser, make_backdrop, sign_in, wait_for  # noqa: E402

from support.rtsp import RtspServer, gst_rtsp_available  # noqa: E402

GOAL = 0.9  # 54 s of video per 60 s


def onboard_all(hub: Hub, urls: list[str]) -> list[int]:
    region = hub.call("POST", "/api/regions", {"name": "Bench"})
    site = hub.call("POST", "/api/sites", {"region_id": region["id"], "name": "Wall lab",
                                           "contact_name": "Bench", "contact_email": "bench@example.org"})
    ids = []
    for k, url in enumerate(urls):
        cam = hub.call("POST", "/api/cameras", {"site_id": site["id"], "name": f"Door {k + 1}", "url": url})
        probe = hub.call("POST", f"/api/cameras/{cam['id']}/probe", {"seconds": 3})
        if probe["verdict"] != "accepted":
            raise BenchError(f"camera {k + 1} rejected: {probe['reasons']}")
        ids.append(int(cam["id"]))
    return ids


def make_camera_clip(path: Path, backdrop: str | None, seconds: int = 10) -> Path:
    """A camera's picture, encoded once: the backdrop (grey with the faces; grey alone without ``--faces``)
    with a moving test pattern over its top band, 1280x720@25, ~2 Mbit/s CBR, a keyframe every 2 s, no
    B-frames (the server's ``file`` source loops it: rtsp.make_h264_file's settings)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise BenchError("ffmpeg is not installed (run `make system-deps`)")
    base = (["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "1280x720", "-framerate", str(FPS), "-stream_loop", "-1",
             "-i", backdrop] if backdrop else ["-f", "lavfi", "-i", f"color=c=gray:size=1280x720:rate={FPS}"])
    gop = 2 * FPS
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", *base,
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x120:rate={FPS}",
                    "-filter_complex", "[0:v][1:v]overlay=0:0,format=yuv420p", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", str(gop), "-keyint_min", str(gop),
                    "-sc_threshold", "0", "-b:v", "2000k", "-maxrate", "2000k", "-bufsize", "2000k",
                    "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(path)], check=True, timeout=120)
    return path


TIMES_JS = "() => [...document.querySelectorAll('.tile[data-camera] video')].map((v) => v.currentTime)"


def measure_tiles(page: Any, seconds: float) -> tuple[list[float], list[int]]:
    """Seconds of video each tile played during ``seconds`` of the clock, and its jumps or reloads.

    Sampled every 0.5 s and summed, counting only what played: a step back (the player reloaded) or a step of
    more than twice the clock (a jump over a gap, or to the live edge) counts nothing, so neither a reload
    nor a skip passes for video shown."""
    prev, t0 = page.evaluate(TIMES_JS), time.monotonic()
    played, jumps = [0.0] * len(prev), [0] * len(prev)
    last = t0
    while last - t0 < seconds:
        time.sleep(min(0.5, max(0.0, seconds - (last - t0))))
        now, at = page.evaluate(TIMES_JS), time.monotonic()
        for k, (b, c) in enumerate(zip(now, prev, strict=True)):
            if 0 < b - c <= 2 * (at - last):
                played[k] += b - c
            elif b != c:
                jumps[k] += 1
        prev, last = now, at
    return played, jumps


def print_tiles(advance: list[float], clock: float) -> None:
    """The Markdown table of each tile's video advanced against the clock, goal met in bold."""
    print("| tile | video advanced (s) | per clock second (reference 1.00x; goal >= 0.90x) |")
    print("|---|---|---|")
    for k, x in enumerate(advance):
        mark = "**" if x / clock >= GOAL else ""
        print(f"| {k + 1} | {x:.1f} of {clock:.1f} | {mark}{x / clock:.2f}x{mark} |")


def append_json(path: Path | None, result: dict[str, Any]) -> None:
    """One JSON line per run, appended to ``--json``'s file if given."""
    if path is not None:
        with open(path, "a") as fh:
            fh.write(json.dumps(result) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--faces", type=int, default=2)
    ap.add_argument("--no-analytics", action="store_true")
    ap.add_argument("--live-cameras", action="store_true",
                    help="encode every camera live on this machine (time-coded) instead of looping a clip")
    ap.add_argument("--start-timeout", type=float, default=180.0, help="deadline for every tile to play")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if not gst_rtsp_available():
        print("error: the system python cannot import GstRtspServer (run `make system-deps`)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="civicam-wall-"))
    hub: Hub | None = None
    result: dict[str, Any] = {"cameras": a.cameras, "faces": a.faces, "analytics": not a.no_analytics,
                              "cameras_encode": "live" if a.live_cameras else "clip"}
    try:
        backdrop = str(make_backdrop(work / "backdrop.i420", a.faces)) if a.faces else None
        if a.live_cameras:
            mounts = [{"path": f"/c{k}", "source": "timecode", "fps": FPS, "bitrate_kbps": 2000, "shared": True,
                       **({"backdrop": backdrop} if backdrop else {})} for k in range(a.cameras)]
        else:
            clip = str(make_camera_clip(work / "camera.h264", backdrop))
            mounts = [{"path": f"/c{k}", "source": "file", "file": clip, "fps": FPS, "shared": True}
                      for k in range(a.cameras)]
        with RtspServer(mounts) as cams:
            hub = Hub(work, not a.no_analytics)
            hub.start()
            ids = onboard_all(hub, [cams.url(f"/c{k}") for k in range(a.cameras)])
            for cid in ids:
                hub.wait_recording(cid, 90)
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = launch_browser(p)
                try:
                    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
                    sign_in(page, hub)
                    page.goto(f"{hub.url}/wall?n={a.cameras}")
                    t_open = time.monotonic()
                    wait_for(lambda: min(page.evaluate(TIMES_JS) or [0]) > 0, a.start_timeout,
                             "every tile playing", 0.5)
                    result["all_playing_after_s"] = round(time.monotonic() - t_open, 1)
                    t0, c0 = time.monotonic(), hub.cpu()
                    played, jumps = measure_tiles(page, a.seconds)
                    t1, c1 = time.monotonic(), hub.cpu()
                    page.screenshot(path=str(work / "wall.png"))
                    shutil.copy(work / "wall.png", "/tmp/civicam-wall.png")
                finally:
                    browser.close()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if hub is not None:
            print(f"--- hub log (last lines) ---\n{hub.log_tail()}", file=sys.stderr)
        return 1
    finally:
        if hub is not None:
            hub.stop()
        shutil.rmtree(work, ignore_errors=True)
    clock = t1 - t0
    advance = [round(x, 1) for x in played]
    result.update({"clock_s": round(clock, 1), "advance_s": advance, "jumps": jumps,
                   "ratios": [round(x / clock, 2) for x in advance], "hub_cpu_cores": round((c1 - c0) / clock, 2),
                   "load": os.getloadavg()[0]})
    print_tiles(advance, clock)
    print(f"\nJumps or reloads per tile (not counted as played): {jumps}")
    print(f"\nAll tiles playing {result['all_playing_after_s']} s after the wall opened; hub CPU "
          f"{result['hub_cpu_cores']} cores (analytics {'on' if result['analytics'] else 'off'}; cameras "
          f"{'encoded live here' if a.live_cameras else 'looping a clip'}); load average "
          f"{result['load']:.1f} on {os.cpu_count()} CPUs. Screenshot: /tmp/civicam-wall.png")
    append_json(a.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
