"""The hub's CPU per segment received from a gateway, without cameras: a real hub (``civicam serve --tls``)
and N segments of 1 MB sent the way a gateway sends them (tus creation-with-upload, one request each, one
keep-alive connection). A profiling aid for the receive path (``--profile``: py-spy, GIL holders only, the
collapsed stacks written next to the figures); bench/edge.py is the benchmark with the goal. Usage::

    python bench/edge_receive.py --segments 300 [--parallel 10] [--profile prof.txt]

``--parallel N``: N cameras sending at once, each on its own connection (as a gateway's camera lanes do).
``--batch K``: K cameras whose segments go together, K per request (``POST /api/edge/batches``, as a gateway's
lanes send segments finished at about the same time); with ``--parallel`` 1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

from civicam.ingest.uploads import encode_metadata  # noqa: E402
from support.edge import Hub  # noqa: E402

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segments", type=int, default=300)
    ap.add_argument("--bytes", type=int, default=1_000_000, help="segment size (4 s at 2 Mbit/s: 1 MB)")
    ap.add_argument("--parallel", type=int, default=1, help="cameras sending at once, a connection each")
    ap.add_argument("--batch", type=int, default=1, help="segments per request (K cameras' segments together)")
    ap.add_argument("--profile", type=Path, help="write py-spy's collapsed stacks (GIL holders) here")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="civicam-bench-recv-"))
    hub = Hub(root / "hub")
    try:
        hub.setup()
        tok = hub.token(hub.add_site("Site"))
        hub.start()
        assert hub.proc is not None
        auth = {"Authorization": f"Bearer {tok['token']}", "Tus-Resumable": "1.0.0"}
        body = os.urandom(args.bytes)
        n = max(1, args.parallel)
        k = max(1, args.batch)
        if k > 1 and n > 1:
            ap.error("--batch with --parallel 1 only")
        clients = [httpx.Client(base_url=hub.url, verify=False, timeout=30) for _ in range(n)]
        try:
            cams = [clients[0].post("/api/edge/cameras", json={"name": f"cam{c}", "probe": {"verdict": "accepted"}},
                                    headers=auth).json()["id"] for c in range(max(n, k))]

            def segment(i: int, camera: int, slot: int) -> tuple[bytes, dict[str, object]]:
                data = body[:-8] + i.to_bytes(8, "big")
                start = T0 + timedelta(seconds=4 * slot)
                return data, {"camera_id": camera, "start": start.isoformat(),
                              "end": (start + timedelta(seconds=4)).isoformat(),
                              "sha256": hashlib.sha256(data).hexdigest(), "seq": slot, "frames": 100, "keyframes": 2,
                              "init_bytes": 700, "codec": "h264", "width": 1280, "height": 720, "session": "bench"}

            def send_batch(slot: int) -> None:
                parts = [segment(slot * k + c, cams[c], slot) for c in range(k)]
                manifest = [{"length": len(d), "metadata": encode_metadata(m)} for d, m in parts]
                r = clients[0].post("/api/edge/batches", content=b"".join(d for d, _ in parts), headers={
                    **auth, "Civicam-Batch": base64.b64encode(json.dumps(manifest).encode()).decode(),
                    "Content-Type": "application/octet-stream"})
                assert r.status_code == 200 and all(i.get("stored") for i in r.json()["items"]), r.text

            def send(i: int) -> None:
                if k > 1:
                    send_batch(i)
                    return
                lane = i % n  # camera ``lane`` sends every n-th segment, on its own connection
                data, meta = segment(i, cams[lane], i // n)
                r = clients[lane].post("/api/edge/uploads", content=data, headers={
                    **auth, "Upload-Length": str(len(data)), "Upload-Metadata": encode_metadata(meta),
                    "Content-Type": "application/offset+octet-stream"})
                assert "Civicam-Stored" in r.headers, (r.status_code, r.text)

            def lanes(first: int, last: int) -> None:
                with ThreadPoolExecutor(n) as pool:
                    done = [pool.submit(lambda k=k: [send(i) for i in range(first, last) if i % n == k])
                            for k in range(n)]
                    for lane in done:
                        lane.result()  # a refused segment fails the run

            warm = 5 * n
            requests = args.segments // k  # with --batch, each "segment" index below is a request of k
            lanes(0, warm)  # warm: first requests build caches, routes, the store, one connection per lane
            spy = None
            if args.profile:
                spy = subprocess.Popen([shutil.which("py-spy") or "py-spy", "record", "--pid", str(hub.proc.pid),
                                        "-r", "200", "-f", "raw", "-o", str(args.profile), "--gil", "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            c0, t0 = cpu_seconds(hub.proc.pid), time.monotonic()
            lanes(warm, warm + requests)
            cpu, wall = cpu_seconds(hub.proc.pid) - c0, time.monotonic() - t0
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
        finally:
            for c in clients:
                c.close()
        sent = requests * k
        print(f"{sent} segments of {args.bytes} bytes, {n} at once, {k} per request: hub {cpu:.2f} CPU-s, "
              f"{1000 * cpu / sent:.1f} ms per segment, wall {wall:.1f} s, load {os.getloadavg()[0]:.2f}")
    finally:
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
