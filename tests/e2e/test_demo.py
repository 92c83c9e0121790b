"""`civicam demo` (what `make run` starts): a hub from nothing, with cameras probed and the API up."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[str], deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert proc.poll() is None, "the hub exited early"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling a readiness condition with a deadline, not standing in for it
    raise AssertionError("hub did not become healthy in time")


@pytest.mark.timeout(360)
def test_demo_starts_a_hub_with_probed_cameras(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CIVICAM_DATA_DIR": str(tmp_path / "demo"), "CIVICAM_PORT": str(port)}
    env.pop("CIVICAM_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "civicam", "demo"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        password = None
        for line in proc.stdout:
            if m := re.search(r"sign in as: admin / (\S+)", line):
                password = m.group(1)
                break
        assert password, "the demo did not print the admin credentials"
        # Keep reading the hub's log so a full pipe never blocks it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc)
        token = httpx.post(f"{base}/api/auth/token", json={"username": "admin", "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        cams = httpx.get(f"{base}/api/cameras", headers=headers).json()["items"]
        assert sorted(c["status"] for c in cams) == ["accepted", "accepted", "rejected"]
        rejected = next(c for c in cams if c["status"] == "rejected")
        codes = {r["code"] for r in rejected["last_probe"]["reasons"]}
        assert codes == {"resolution_too_low", "fps_out_of_range"}
        # The accepted demo cameras are recorded in real time, like cameras, not read in a blink.
        accepted = next(c for c in cams if c["status"] == "accepted")["id"]
        segments: list[dict[str, str]] = []
        end = time.monotonic() + 60
        while len(segments) < 2 and time.monotonic() < end:
            r = httpx.get(f"{base}/api/cameras/{accepted}/recordings", headers=headers)
            segments = r.json()["segments"] if r.status_code == 200 else []
            time.sleep(0.5)  # polling a condition with a deadline
        assert len(segments) >= 2, "the demo recorded nothing"
        now = datetime.now(UTC)
        for seg in segments:
            start, stop = datetime.fromisoformat(seg["start"]), datetime.fromisoformat(seg["end"])
            assert stop <= now + timedelta(seconds=1), "a segment ends in the future: the file was not paced"
            assert 1.0 <= (stop - start).total_seconds() <= 10.0
        # The demo shows the product: its visitors are counted, masked and unmasked, within minutes.
        site = next(c for c in cams if c["status"] == "accepted")["site_id"]
        total: dict[str, int] | None = None
        end = time.monotonic() + 180
        while time.monotonic() < end:
            r = httpx.get(f"{base}/api/analytics/site/{site}", params={"interval": "15m"}, headers=headers)
            total = r.json()["total"] if r.status_code == 200 else None
            # Cells under the minimum cell size are withheld: wait for a published count.
            if total and (total.get("masked") or 0) >= 1 and (total.get("unmasked") or 0) >= 1:
                break
            time.sleep(1.0)  # polling a condition with a deadline
        assert total and (total.get("masked") or 0) >= 1 and (total.get("unmasked") or 0) >= 1, \
            f"the demo counted {total}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
