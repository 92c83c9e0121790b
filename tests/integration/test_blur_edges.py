"""Faces walking out of the picture stay blurred to the last pixel, in a real encoded clip.

A detector stops finding a face once part of it is out of the frame, while what is still in view can be
recognisable; faces entering are found late for the same reason. The clip's true boxes (clipped to the
frame) are the oracle (support.faces.recognisable); no face detector judges the result. The blurring is the
one playback and export use (``transcode_blurred``); the live pipeline runs the same ``FaceBlur``.
"""

from __future__ import annotations

from pathlib import Path

import av

from civicam.live.privacy import FaceBlur, transcode_blurred, whole_blur
from support.faces import Walker, decode, faces, share_recognisable, walkers_clip


def test_faces_leaving_and_entering_through_the_edges_stay_blurred(tmp_path: Path) -> None:
    # The portrait, whose crop is the face (a loose dataset crop's true box holds hair and background the
    # blur need not cover, and the oracle would count them); bare and masked, on every clone.
    big, mid, small = (faces(1, size, masked, "portrait")[0]
                       for size, masked in ((150, False), (90, True), (60, False)))
    walkers = [
        Walker(big, 120, 40, -8, 0),                    # out through the left edge within a second
        Walker(mid, 1280 - 60 - mid.shape[1], 250, 6, 0),  # out through the right edge, masked
        Walker(small, 1281, 420, -5, 0),                  # walks in from the right
        Walker(faces(1, 110, True, "portrait")[0], 600, 540, 0, 7),  # out through the bottom edge
    ]
    clip = tmp_path / "edges.mp4"
    truth = walkers_clip(clip, walkers, seconds=3.0)
    sources = decode(clip)
    # as the live view blurs (no waiting), and as playback and export do (waiting for later detections)
    for name, blur in (("live", FaceBlur()), ("whole", whole_blur())):
        transcode_blurred(str(clip), tmp_path / f"{name}.mp4", blur)
        served = decode(tmp_path / f"{name}.mp4")
        assert len(served) == len(sources) == len(truth)
        with av.open(str(clip)) as a, av.open(str(tmp_path / f"{name}.mp4")) as b:  # every frame, in order
            assert [f.pts for f in a.decode(video=0)] == [f.pts for f in b.decode(video=0)]
        share, checked = share_recognisable(sources, served, truth, min_px=24)
        partial = sum(1 for boxes in truth for b in boxes if b[0] == 0 or b[2] == 1280 or b[3] == 720)
        assert checked > 120 and partial > 40  # the faces were in view, and cut by the edges, for many frames
        assert share == 0.0, name
    # the oracle can tell: the same frames unblurred read as recognisable
    assert share_recognisable(sources, sources, truth, min_px=24)[0] == 1.0
