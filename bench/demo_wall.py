"""What a new user sees after ``make run``: does the demo hub's camera wall play on this machine?

Starts ``civicam demo`` (the command ``make run`` runs: generated entrance clips as cameras, analytics on,
SQLite, a fresh temporary data directory), signs in as the admin it prints, opens the wall (``/wall``, every
tile blurred as every operator sees it) in Debian's chromium, and reads each tile's ``video.currentTime``
against the wall clock for ``--seconds`` s, counted by bench/wall.py's ``measure_tiles`` (a step back or a jump
over more than twice the clock counts nothing). Reference: the clock itself (1.00x); the wall goal is >= 0.90x a tile.
Also reported: seconds from the command's start to the hub answering and to every tile playing, and the hub
process's CPU (cores) over the window. Usage::

    python bench/demo_wall.py [--seconds 60] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import os
import re
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

from live_latency import BenchError, free_port, launch_browser, wait_for  # noqa: E402
from procstat import cpu_seconds  # noqa: E402
from wall import TIMES_JS, append_json, measure_tiles, print_tiles  # noqa: E402

CIVICAM = REPO / ".venv" / "bin" / "civicam"
PASSWORD = re.compile(r"sign in as: admin / (\S+)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--start-timeout", type=float, default=300.0, help="deadline for the hub and for the tiles")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="civicam-demo-wall-"))
    log_path = work / "demo.log"
    port = free_port()
    env = {**os.environ, "CIVICAM_DATA_DIR": str(work / "demo")}
    t_start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(CIVICAM), "demo", "--port", str(port)], env=env, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT)
    result: dict[str, Any] = {}
    try:
        def ready() -> str | None:
            if proc.poll() is not None:
                raise BenchError(f"civicam demo exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
            text = log_path.read_text()
            found = PASSWORD.search(text)
            return found.group(1) if found and "Application startup complete" in text else None

        password = wait_for(ready, a.start_timeout, "the demo hub answering", 0.5)
        result["hub_up_s"] = round(time.monotonic() - t_start, 1)
        url = f"http://127.0.0.1:{port}"
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = launch_browser(p)
            try:
                page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
                page.goto(f"{url}/login")
                page.get_by_label("Username").fill("admin")
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{url}/")
                page.goto(f"{url}/wall")
                wait_for(lambda: min(page.evaluate(TIMES_JS) or [0]) > 0, a.start_timeout, "every tile playing", 0.5)
                result["all_playing_s"] = round(time.monotonic() - t_start, 1)
                t0, c0 = time.monotonic(), cpu_seconds(proc.pid)
                played, jumps = measure_tiles(page, a.seconds)
                clock = time.monotonic() - t0
                result.update({"tiles": len(played), "clock_s": round(clock, 1),
                               "advance_s": [round(x, 1) for x in played], "jumps": jumps,
                               "ratios": [round(x / clock, 2) for x in played],
                               "hub_cpu_cores": round((cpu_seconds(proc.pid) - c0) / clock, 2),
                               "load": round(os.getloadavg()[0], 1)})
                page.screenshot(path="/tmp/civicam-demo-wall.png")
            finally:
                browser.close()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print_tiles(played, clock)
    print(f"\nHub answering {result['hub_up_s']} s after `civicam demo` started, every tile playing at "
          f"{result['all_playing_s']} s; jumps {result['jumps']}; hub CPU {result['hub_cpu_cores']} cores "
          f"(analytics on); load average {result['load']} on {os.cpu_count()} CPUs. "
          "Screenshot: /tmp/civicam-demo-wall.png")
    append_json(a.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
