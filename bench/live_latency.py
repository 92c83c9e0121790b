"""Live latency benchmark: glass-to-player time of the dashboard's live view in a real browser.

A time-coded live camera (1280x720@25 H.264, ~2 Mbit/s, x264 zerolatency, 2 s GOP) is served over loopback by
the GStreamer RTSP test server: every frame carries the wall-clock time it was produced ("glass") as a row of
black and white blocks (tests/support/timecode.py), on mid-grey or, with ``--faces N``, around N real faces
(static) so the blurred view's detector and blur have their real work to do. A hub (``civicam serve`` on
127.0.0.1, SQLite, a temporary data directory, analytics off unless ``--analytics``) onboards the camera
through the API and records it. Debian's chromium, driven by Playwright, signs in to the dashboard, opens the
camera page and starts the live view with the page's own player (player.js on hls.js): once blurred (the
default) and once unblurred (an admin with ``view_unblurred`` and a stated reason, through the page's form).
On every displayed frame (``requestVideoFrameCallback``) the page draws the block row to a canvas, decodes the
time code and records ``Date.now() - code``: browser and camera run on one machine, so one clock. Once
playback has settled (at least ``--settle`` s after the first frame, then until the last 3 s of frames vary
by under 0.25 s at normal playback rate -- hls.js may be catching up on the live edge -- or ``--settle-max``
s have passed), ``--seconds`` s of frames are collected per view.

Reference: the goal (live view under 4 s behind the camera) -- the ratio column is latency / 4 s. For
context the same time code is also read straight off the RTSP stream by a PyAV decoder for
``--reference-seconds`` (the camera's own encode + RTP + decode floor; no hub, no HLS, no display). Usage::

    python bench/live_latency.py [--seconds 30] [--views unblurred,blurred] [--faces 2] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from procstat import cpu_seconds  # noqa: E402

from support import timecode as tc  # noqa: E402
from support.rtsp import RtspServer, gst_rtsp_available  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
GOAL_S = 4.0
FPS = 25
BENCH_USER = "latency-bench"
BENCH_PASSWORD = "Latency-bench-passw0rd"
UNBLUR_REASON = "live latency benchmark"

# Installed into the camera page before the view starts: decodes the time code of every displayed frame.
# Layout constants come from tests/support/timecode.py, so the encoder and this decoder cannot drift apart.
MEASURE_JS = """
(cfg) => {
  const video = document.getElementById("player");
  if (!video) throw new Error("the camera page has no #player video element");
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) throw new Error("no requestVideoFrameCallback");
  const bandW = cfg.bits * cfg.blockW;
  const canvas = document.createElement("canvas");
  canvas.width = bandW; canvas.height = cfg.blockH;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  const st = window.__latency = { samples: [], undecoded: 0, errors: [] };
  const decode = (px) => {
    const bits = [];
    for (let i = 0; i < cfg.bits; i++) {
      const cx = i * cfg.blockW + (cfg.blockW >> 1), cy = cfg.blockH >> 1;
      let sum = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const o = ((cy + dy) * bandW + cx + dx) * 4;
        sum += px[o] + px[o + 1] + px[o + 2];
      }
      bits.push(sum / 27 >= cfg.rgbThreshold ? 1 : 0);
    }
    for (let i = 0; i < cfg.marker.length; i++) if (bits[i] !== cfg.marker[i]) return null;
    let value = 0;  // 48 bits: exact in a double, so no 32-bit bitwise operators here
    for (let i = 0; i < cfg.valueBits; i++) value = value * 2 + bits[cfg.marker.length + i];
    let check = 0;
    for (let i = 0; i < cfg.checkBits; i++) check = check * 2 + bits[cfg.marker.length + cfg.valueBits + i];
    let want = cfg.salt;
    for (let i = 0; i < cfg.valueBits / 8; i++) want ^= Math.floor(value / 2 ** (8 * i)) % 256;
    return check === want ? value : null;
  };
  const onFrame = (_now, meta) => {
    const shown = Date.now();
    try {
      const sx = video.videoWidth / cfg.width, sy = video.videoHeight / cfg.height;
      g.drawImage(video, cfg.x0 * sx, cfg.y0 * sy, bandW * sx, cfg.blockH * sy, 0, 0, bandW, cfg.blockH);
      const code = decode(g.getImageData(0, 0, bandW, cfg.blockH).data);
      if (code === null) st.undecoded += 1;
      else st.samples.push([shown, code, meta.mediaTime]);
    } catch (e) {
      if (st.errors.length < 5) st.errors.push(String(e));
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}
"""

JS_LAYOUT = {
    "width": tc.WIDTH, "height": tc.HEIGHT, "x0": tc.X0, "y0": tc.Y0, "blockW": tc.BLOCK_W, "blockH": tc.BLOCK_H,
    "bits": tc.BITS, "marker": list(tc.MARKER), "valueBits": tc.VALUE_BITS, "checkBits": tc.CHECK_BITS,
    "salt": tc.CHECK_SALT,
    # The page sees RGB: limited-range BT.601 maps luma 16 -> 0 and 235 -> 255; grey 128 -> ~130.
    "rgbThreshold": 128,
}


class BenchError(Exception):
    """A step of the set-up failed; the message says which and why."""


@dataclass
class ViewResult:
    view: str
    frames: int = 0
    undecoded: int = 0
    window_s: float = 0.0
    first_frame_s: float | None = None
    settled_s: float | None = None  # after the first frame; None: never steady within --settle-max
    median_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    min_ms: float | None = None
    shown_fraction: float | None = None
    age_p95_ms: float | None = None  # age of the picture on screen, sampled every 40 ms: stalls count too
    age_max_ms: float | None = None
    hub_cpu_cores: float | None = None
    error: str | None = None
    player_state: str | None = None
    served_blurred: bool | None = None  # what the hub's master playlist said (org.civicam.blurred)
    series: list[tuple[float, float]] = field(default_factory=list)  # (s into the window, latency ms), thinned


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def make_backdrop(path: Path, faces: int) -> Path:
    """One 1280x720 I420 frame: mid-grey with ``faces`` real faces (from the shared dataset) for blurring to find."""
    import cv2
    import numpy as np
    import pytest

    try:
        from support.faces import visible_faces

        crops = visible_faces(faces)
    except (Exception, pytest.fail.Exception) as exc:  # the helper fails as a test does when data is missing
        raise BenchError(f"cannot get {faces} detectable faces from the shared dataset: {exc}") from None
    img = np.full((tc.HEIGHT, tc.WIDTH, 3), tc.GREY, np.uint8)
    size = crops[0].shape[0]
    for k, face in enumerate(crops):  # below the time code band, side by side
        x, y = 100 + k * (size + 60), 200 + (k % 2) * 120
        if x + size > tc.WIDTH:
            raise BenchError(f"{faces} faces of {size} px do not fit side by side in one frame")
        img[y:y + size, x:x + size] = face
    path.write_bytes(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy, or raise BenchError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)  # polling interval of a deadline-bounded wait


# --- the reference: the time code read straight off the camera stream ---------------------------------------

def rtsp_reference(url: str, seconds: float) -> ViewResult:
    """Latency of a PyAV decoder reading the camera directly (encode + RTP + decode, no hub, no display)."""
    import av

    result = ViewResult("camera -> PyAV decoder (direct RTSP, reference)")
    lat: list[float] = []
    t_open = time.monotonic()
    t0: float | None = None
    container = av.open(url, options={"rtsp_transport": "tcp", "fflags": "nobuffer", "flags": "low_delay"},
                        timeout=10)
    try:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            plane = frame.planes[0]
            code = tc.decode_luma(bytes(plane), frame.width, frame.height, plane.line_size)
            if code is None:
                result.undecoded += 1
            else:
                lat.append(time.time() * 1000 - code)
            t0 = t0 or time.monotonic()
            if time.monotonic() - t0 > seconds:
                break
    finally:
        container.close()
    result.first_frame_s = (t0 or time.monotonic()) - t_open
    result.window_s = time.monotonic() - (t0 or t_open)
    fill(result, lat)
    return result


def picture_age(samples: list[tuple[float, float]], t0: float, t1: float, step_ms: float = 40.0) -> list[float]:
    """Age of the picture on screen at every ``step_ms`` in [t0, t1): ``t - code`` of the last frame shown by t.

    Unlike per-frame latency this grows through a stall, when no frame (so no sample) arrives.
    """
    ordered = sorted(samples)
    ages: list[float] = []
    i, current = 0, None
    t = t0
    while t < t1:
        while i < len(ordered) and ordered[i][0] <= t:
            current = ordered[i][1]
            i += 1
        if current is not None:
            ages.append(t - current)
        t += step_ms
    return ages


def fill(result: ViewResult, lat: list[float]) -> None:
    result.frames = len(lat)
    if lat:
        result.median_ms = statistics.median(lat)
        result.p95_ms = percentile(lat, 95)
        result.max_ms = max(lat)
        result.min_ms = min(lat)
    if result.window_s:
        result.shown_fraction = len(lat) / (result.window_s * FPS)


# --- the hub --------------------------------------------------------------------------------------------------

class Hub:
    """``civicam serve`` on 127.0.0.1 over a fresh data directory, set up through the CLI and the API."""

    def __init__(self, work: Path, analytics: bool) -> None:
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CIVICAM_DATA_DIR": str(work / "hub"),
                    "CIVICAM_DATABASE_URL": f"sqlite:///{work / 'hub' / 'civicam.db'}",
                    "CIVICAM_HOST": "127.0.0.1", "CIVICAM_PORT": str(self.port),
                    "CIVICAM_ANALYTICS__ENABLED": "true" if analytics else "false"}
        self.log_path = work / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def _cli(self, *args: str) -> Any:
        done = subprocess.run([sys.executable, "-c", "from civicam.cli.main import main; main()", *args],
                              env=self.env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise BenchError(f"civicam {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
        return json.loads(done.stdout)

    def start(self) -> None:
        admin_password = self._cli("init", "--json")["admin_password"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from civicam.cli.main import main; main()", "serve",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"the hub exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                return self.http.get("/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the hub's /healthz", 0.2)
        if self.http.get("/static/vendor/hls.min.js").status_code != 200:
            raise BenchError("the hub has no /static/vendor/hls.min.js: run `make web` first")
        self.http.headers["Authorization"] = "Bearer " + self.token("admin", admin_password)
        self.call("POST", "/api/users", {"username": BENCH_USER, "password": BENCH_PASSWORD, "role": "admin",
                                         "view_unblurred": True})

    def token(self, user: str, password: str) -> str:
        return str(self.call("POST", "/api/auth/token", {"username": user, "password": password})["access_token"])

    def call(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, path, json=body)
        if r.status_code >= 400:
            raise BenchError(f"{method} {path} answered {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def onboard(self, rtsp_url: str) -> int:
        """Region, site, camera; probe it (it must be accepted); returns the camera id."""
        region = self.call("POST", "/api/regions", {"name": "Bench"})
        site = self.call("POST", "/api/sites", {"region_id": region["id"], "name": "Latency lab",
                                                "contact_name": "Bench", "contact_email": "bench@example.org"})
        cam = self.call("POST", "/api/cameras", {"site_id": site["id"], "name": "Time code", "url": rtsp_url})
        probe = self.call("POST", f"/api/cameras/{cam['id']}/probe", {"seconds": 3})
        if probe["verdict"] != "accepted":
            raise BenchError(f"onboarding rejected the camera: {probe['reasons']} (measured {probe['measured']})")
        return int(cam["id"])

    def wait_recording(self, camera_id: int, timeout: float) -> None:
        def recording() -> bool:
            health = self.call("GET", "/api/recording/health")
            if not health["running"]:
                raise BenchError("the hub's recording service is not running")
            return any(c["camera_id"] == camera_id and c["last_segment_end"] for c in health["cameras"])

        wait_for(recording, timeout, "the first recorded segment")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no hub log)"

    def stop(self) -> None:
        self.http.close()
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: anything the hub spawned and left behind
        except ProcessLookupError:
            pass


# --- the browser ----------------------------------------------------------------------------------------------

def sign_in(page: Any, hub: Hub) -> None:
    """Through the dashboard's own login form, as the benchmark user."""
    page.goto(f"{hub.url}/login")
    page.get_by_label("Username").fill(BENCH_USER)
    page.get_by_label("Password").fill(BENCH_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{hub.url}/")


def measure_view(browser: Any, hub: Hub, camera_id: int, view: str, args: argparse.Namespace) -> ViewResult:
    """Sign in, open the camera page, start ``view`` with the page's own controls and collect latencies."""
    result = ViewResult(view)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        sign_in(page, hub)
        page.goto(f"{hub.url}/cameras/{camera_id}")
        page.evaluate(MEASURE_JS, JS_LAYOUT)
        started = time.monotonic()
        if view == "unblurred":
            page.locator("details.unblur summary").click()
            page.locator("#unblur-reason").fill(UNBLUR_REASON)
            page.locator("#unblur-form button[type=submit]").click()
        else:
            page.locator("#watch-live").click()

        def state() -> str:
            return str(page.evaluate(
                "() => { const v = document.getElementById('player');"
                " const o = document.querySelector('.frame [data-state]');"
                " return `${v.dataset.state || '?'}: ${(o && o.textContent) || ''} blurred=${v.dataset.blurred}`; }"))

        def first_frame() -> bool:
            return bool(page.evaluate("() => window.__latency.samples.length > 0"))

        try:
            wait_for(first_frame, args.first_frame_timeout, f"the first decoded frame of the {view} view", 0.25)
        except BenchError as exc:
            result.error = str(exc)
            result.player_state = state()
            errors = page.evaluate("() => window.__latency.errors")
            if errors:
                result.error += f"; page errors: {errors}"
            return result
        result.first_frame_s = time.monotonic() - started
        result.settled_s = settle(page, args.settle, args.settle_max)
        t0, c0 = time.time() * 1000, hub.cpu()
        time.sleep(args.seconds)  # the measurement window itself
        t1, c1 = time.time() * 1000, hub.cpu()
        data = page.evaluate("() => window.__latency")
        result.player_state = state()
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            page.locator("#player").screenshot(path=str(args.screenshots / f"live-latency-{view}.png"))
        flag = page.evaluate("() => document.getElementById('player').dataset.blurred")
        result.served_blurred = None if flag is None else flag == "true"
    finally:
        context.close()
    result.window_s = (t1 - t0) / 1000
    result.hub_cpu_cores = (c1 - c0) / result.window_s
    result.undecoded = int(data["undecoded"])
    every = [(float(shown), float(code)) for shown, code, _media in data["samples"]]
    inside = [(shown, code) for shown, code in every if t0 <= shown <= t1]
    lat = [shown - code for shown, code in inside]
    fill(result, lat)
    if ages := picture_age(every, t0, t1):
        result.age_p95_ms, result.age_max_ms = percentile(ages, 95), max(ages)
    step = max(1, len(inside) // 60)
    result.series = [(round((shown - t0) / 1000, 2), round(shown - code)) for shown, code in inside[::step]]
    if data["errors"]:
        result.error = f"page errors: {data['errors']}"
    if result.served_blurred is not None and result.served_blurred != (view == "blurred"):
        result.error = (result.error or "") + f" the hub served blurred={result.served_blurred} for this view"
    return result


STEADY_JS = """
() => {
  const now = Date.now(), recent = window.__latency.samples.filter((x) => x[0] > now - 3000);
  if (recent.length < 50) return false;  // stalled or dropping most frames: not steady
  const lat = recent.map((x) => x[0] - x[1]);
  return Math.max(...lat) - Math.min(...lat) < 250 && document.getElementById("player").playbackRate === 1;
}
"""


def settle(page: Any, least: float, most: float) -> float | None:
    """Wait until hls.js has found its place behind the live edge; seconds waited, None if it never did."""
    t0 = time.monotonic()
    time.sleep(least)  # hls.js's first seek and buffering happen here
    try:
        wait_for(lambda: page.evaluate(STEADY_JS), max(0.0, most - least), "steady playback", 0.5)
    except BenchError:
        return None
    return time.monotonic() - t0


def launch_browser(playwright: Any) -> Any:
    if not os.path.exists(CHROMIUM):
        raise BenchError(f"Debian's chromium is not at {CHROMIUM} (make system-deps)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--autoplay-policy=no-user-gesture-required"])


# --- report ---------------------------------------------------------------------------------------------------

def fmt_s(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.2f} s"


def settled(r: ViewResult) -> str:
    if r.player_state is None:  # the direct reference has no player to settle
        return "—"
    return "never" if r.settled_s is None else f"{r.settled_s:.0f} s"


def report(results: list[ViewResult]) -> None:
    print(f"\n| view | median | p95 | max | on-screen age p95 · max | **median / {GOAL_S:.0f} s goal** | p95 / goal | "
          "frames shown (of 25/s) | undecodable | hub CPU (cores) | first frame · settled after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    def ratio(ms: float | None, bold: bool = False) -> str:
        if ms is None:
            return "—"
        return f"**{ms / 1000 / GOAL_S:.2f}x**" if bold else f"{ms / 1000 / GOAL_S:.2f}x"

    for r in results:
        if r.first_frame_s is None and r.error:
            print(f"| {r.view} | no frame: {r.error} (player: {r.player_state}) | | | | | | | | | |")
            continue
        age = "—" if r.age_p95_ms is None else f"{fmt_s(r.age_p95_ms)} · {fmt_s(r.age_max_ms)}"
        shown = f"{r.frames} ({100 * (r.shown_fraction or 0):.0f}%)"
        print(f"| {r.view} | {fmt_s(r.median_ms)} | {fmt_s(r.p95_ms)} | {fmt_s(r.max_ms)} | {age} | "
              f"{ratio(r.median_ms, bold=True)} | {ratio(r.p95_ms)} | {shown} | "
              f"{r.undecoded} | {'—' if r.hub_cpu_cores is None else f'{r.hub_cpu_cores:.2f}'} | "
              f"{'—' if r.first_frame_s is None else f'{r.first_frame_s:.1f} s'} · "
              f"{settled(r)} |")
    for r in results:
        if r.series:
            trace = " ".join(f"{t:.0f}s:{ms / 1000:.1f}" for t, ms in r.series[:: max(1, len(r.series) // 12)])
            print(f"{r.view} latency over the window (s into it: latency s): {trace}")
        elif r.first_frame_s is not None and r.player_state is not None:
            print(f"{r.view}: no frame displayed inside the window (player at its end: {r.player_state})")
        if r.error and r.first_frame_s is not None:
            print(f"{r.view}: {r.error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window per view")
    parser.add_argument("--settle", type=float, default=5.0, help="least seconds after 1st frame before measuring")
    parser.add_argument("--settle-max", type=float, default=45.0,
                        help="measure anyway (marked 'never' settled) when playback is not steady after this long")
    parser.add_argument("--views", default="unblurred,blurred", help="comma-separated, in order: unblurred, blurred")
    parser.add_argument("--first-frame-timeout", type=float, default=180.0,
                        help="give a view up when no frame is displayed this long after starting it")
    parser.add_argument("--reference-seconds", type=float, default=10.0,
                        help="read the camera directly for this long first (0: skip)")
    parser.add_argument("--faces", type=int, default=0,
                        help="put this many real faces (static) in the picture, so blurring has work to do")
    parser.add_argument("--analytics", action="store_true", help="leave the hub's face analytics on")
    parser.add_argument("--record-timeout", type=float, default=90.0, help="deadline for the first segment")
    parser.add_argument("--json", type=Path, default=None, help="append results as JSON lines")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="save the player of each view at the end of its window here (to see what was shown)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (hub log, recordings)")
    args = parser.parse_args()
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    if unknown := set(views) - {"blurred", "unblurred"}:
        parser.error(f"unknown views: {', '.join(sorted(unknown))}")
    if not gst_rtsp_available():
        print("error: the system python cannot import GstRtspServer (run `make system-deps`)", file=sys.stderr)
        return 2
    # A plain `kill` of the benchmark must still stop the camera, the hub and the browser (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="civicam-latency-"))
    results: list[ViewResult] = []
    hub: Hub | None = None
    try:
        mount: dict[str, Any] = {"path": "/tc", "source": "timecode", "fps": FPS, "bitrate_kbps": 2000,
                                 "shared": True}
        if args.faces > 0:
            mount["backdrop"] = str(make_backdrop(work / "backdrop.i420", args.faces))
        with RtspServer([mount]) as camera:
            if args.reference_seconds > 0:
                results.append(rtsp_reference(camera.url("/tc"), args.reference_seconds))
            print(f"hub: starting on a fresh data directory in {work}", flush=True)
            hub = Hub(work, args.analytics)
            hub.start()
            camera_id = hub.onboard(camera.url("/tc"))
            hub.wait_recording(camera_id, args.record_timeout)
            print(f"hub: camera {camera_id} accepted and recording", flush=True)
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = launch_browser(p)
                try:
                    for view in views:
                        print(f"view: {view} ...", flush=True)
                        r = measure_view(browser, hub, camera_id, view, args)
                        results.append(r)
                        print(json.dumps({k: v for k, v in asdict(r).items() if k != "series"}), flush=True)
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
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(results)
    print(f"\nReference: the goal, live view <= {GOAL_S:.0f} s behind the camera (ratio = latency / {GOAL_S:.0f} s; "
          "under 1.00x meets it). Load average at the end: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs.")
    if args.json:
        with open(args.json, "a") as fh:
            for r in results:
                fh.write(json.dumps(asdict(r)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
