"""Cost of serving a stream blurred: decode + face detection + blur + encode, per second of 1280x720@25 video.

Prints CPU seconds per video-second for the blurred transcode the hub runs for a watched segment, against
a plain decode + encode of the same segment (the reference, measured in the same run), and how many
watched streams one core can keep blurred in real time. Figures go to docs/benchmarks.md (## Blurring).

    .venv/bin/python bench/blur.py [--seconds 4] [--every 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from civicam.live.privacy import FaceBlur, transcode_blurred  # noqa: E402
from support.faces import face_clip, visible_faces  # noqa: E402


def cpu() -> float:
    return time.process_time()


def plain_transcode(src: Path, dest: Path) -> None:
    """The reference: the same decode and encode, with no detection or blur."""
    transcode_blurred(str(src), dest, FaceBlur(detector=_NoFaces(), every=1))


class _NoFaces:
    name = "none"

    def detect(self, frame):  # type: ignore[no-untyped-def]
        from civicam.analytics.detections import Detections

        return Detections()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--every", type=int, default=5, help="detect on every Nth frame (the hub uses 5)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "faces.mp4"
        face_clip(clip, visible_faces(2), args.seconds)
        with av.open(str(clip)) as c:
            frames = sum(1 for _ in c.decode(video=0))
        t0 = cpu()
        plain_transcode(clip, Path(tmp) / "plain.mp4")
        plain = cpu() - t0
        t0 = cpu()
        transcode_blurred(str(clip), Path(tmp) / "blur.mp4", FaceBlur(every=args.every))
        blurred = cpu() - t0
    per_s = blurred / args.seconds
    print(f"frames: {frames} ({args.seconds:g} s of 1280x720@25, 2 faces), detection every {args.every} frames")
    print(f"plain decode+encode: {plain / args.seconds:.2f} CPU-s per video-second (reference)")
    print(f"blurred (decode+detect+verify+blur+encode): {per_s:.2f} CPU-s per video-second")
    print(f"blurred/plain CPU: {blurred / plain:.1f}x")
    print(f"watched streams one core keeps blurred in real time: {1 / per_s:.2f}")


if __name__ == "__main__":
    main()
