"""The blur covers the faces and not the picture: what it changes stays near the faces' true boxes.

Privacy errs towards blurring, but a blur that spreads over the frame hides what operators watch for. The
oracle is the clip's true boxes and a pixel comparison with the source; no detector judges the result.
Faces of the mask-crops dataset over frames of the shared CCTV clips (needs ../shared, as the suite's other
data-bound tests): on those the check pass once took the smooth blurred blob for a face, again and again,
until the blur covered most of the frame.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from civicam.live.cover import PADDING
from civicam.live.privacy import FaceBlur, transcode_blurred
from support.faces import REPO, H, W, Walker, decode, faces, require_shared, walkers_clip


def _backdrops(n: int) -> list[np.ndarray]:
    sys.path.insert(0, str(REPO / "training" / "mask"))
    from data import video_frames

    return [cv2.resize(f, (W, H)) for f in video_frames(n, seed=20261202)]


def test_the_blur_stays_near_the_faces(tmp_path: Path) -> None:
    require_shared()
    worst: list[float] = []
    for k, bg in enumerate(_backdrops(3)):
        walkers = [Walker(faces(1, 26 + 8 * k)[0], 900, 160, -2, 0),
                   Walker(faces(1, 48 + 6 * k, True)[0], 1000, 510, -4, 1)]
        clip = tmp_path / f"c{k}.mp4"
        truth = walkers_clip(clip, walkers, seconds=2.0, backdrop=bg)
        transcode_blurred(str(clip), tmp_path / f"b{k}.mp4", FaceBlur())
        sources, served = decode(clip), decode(tmp_path / f"b{k}.mp4")
        for src, out, boxes in zip(sources, served, truth, strict=True):
            changed = cv2.absdiff(cv2.cvtColor(src, cv2.COLOR_BGR2GRAY), cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)) > 8
            near = np.zeros_like(changed)
            for x1, y1, x2, y2 in boxes:  # each face's box grown by its padding and its motion over 0.6 s
                m = int(PADDING * max(x2 - x1, y2 - y1)) + 4 * 15
                near[max(0, y1 - m):y2 + m, max(0, x1 - m):x2 + m] = True
            worst.append(float(changed[~near].mean()))
    # little far from the faces (a false detection on the backdrop blurs a patch); the blob grew to 88 %
    assert max(worst) < 0.10, max(worst)
