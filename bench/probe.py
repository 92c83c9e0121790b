"""Benchmark: onboarding-probe N local RTSP cameras concurrently vs one by one; records docs/benchmarks.md."""

# Run from the repository root:  .venv/bin/python bench/probe.py [--cameras 50] [--seconds 2]
#
# The cameras are N mounts on one local GStreamer RTSP server, each serving a pre-encoded
# 1280x720@25 H.264 clip (~2 Mbit/s, keyframe every 2 s) on a loop, without transcoding: 50 live
# x264 encoders would need far more CPU than the probes under test and would measure the encoder.

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from civicam.domain.policy import Policy
from civicam.registry.probe import ProbeResult, ProbeTarget, probe_many
from support.rtsp import RtspServer, make_h264_file

HEADING = "## Onboarding probe"
DOC = ROOT / "docs" / "benchmarks.md"


def run(
    targets: list[ProbeTarget], seconds: float, timeout_s: float, concurrency: int
) -> tuple[float, Counter[str]]:
    start = time.monotonic()
    results: list[ProbeResult] = probe_many(
        targets, Policy.model_validate({}), seconds, timeout_s, concurrency
    )
    wall = time.monotonic() - start
    return wall, Counter(r.verdict if r.verdict == "accepted" else ",".join(r.codes) for r in results)


def write_section(text: str) -> None:
    """Replace (or append) the Onboarding probe section, leaving every other section as it was."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    old = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == HEADING), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    DOC.write_text(new, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=2.0, help="media read per probe (product default 5)")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_h264_file(Path(tmp) / "cam.h264", 1280, 720, 25, seconds=4, bitrate_kbps=2000)
        mounts = [
            {"path": f"/cam{i:03d}", "source": "file", "file": str(clip), "fps": 25, "shared": True}
            for i in range(args.cameras)
        ]
        with RtspServer(mounts) as server:
            targets = [ProbeTarget(server.url(m["path"])) for m in mounts]
            # Warm-up: the first client of each mount constructs its pipeline; do not bill that to either run.
            run(targets, 0.5, args.timeout, args.concurrency)
            conc_wall, conc_verdicts = run(targets, args.seconds, args.timeout, args.concurrency)
            print(
                f"concurrent ({args.concurrency} at a time): {conc_wall:.1f}s {dict(conc_verdicts)}",
                flush=True,
            )
            seq_wall, seq_verdicts = run(targets, args.seconds, args.timeout, 1)
            print(f"one by one:                  {seq_wall:.1f}s {dict(seq_verdicts)}", flush=True)
    ratio = seq_wall / conc_wall
    print(f"speed-up: {ratio:.1f}x")

    command = (
        f".venv/bin/python bench/probe.py --cameras {args.cameras} --seconds {args.seconds:g} "
        f"--concurrency {args.concurrency}"
    )
    section = (
        f"{HEADING}\n\n"
        f"Probing {args.cameras} cameras (mounts on one local GStreamer RTSP server, each a pre-encoded "
        f"1280x720@25 H.264 clip at ~2 Mbit/s looped without transcoding), reading {args.seconds:g} s of "
        f"media per probe (product default: 5 s).\n\n"
        "| mode | wall time | verdicts |\n|---|---|---|\n"
        f"| concurrent ({args.concurrency} at a time) | {conc_wall:.1f} s | {dict(conc_verdicts)} |\n"
        f"| one by one | {seq_wall:.1f} s | {dict(seq_verdicts)} |\n\n"
        f"Speed-up: **{ratio:.1f}x**. Machine: {os.cpu_count()} CPU cores, {platform.machine()}, "
        f"Python {platform.python_version()}; measured {time.strftime('%Y-%m-%d')}.\n\n"
        f"Reproduce:\n\n```\n{command}\n```\n"
    )
    if not args.no_write:
        write_section(section)
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
