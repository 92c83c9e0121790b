from __future__ import annotations

from pathlib import Path

import numpy as np

from civicam.analytics.blur import blur_faces
from civicam.analytics.faces import FaceDetector


def _scene(background: np.ndarray, test_split: list[tuple[Path, int]]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    from data import read_bgr
    from scenes import compose

    rng = np.random.default_rng(5)
    crops = [(read_bgr(test_split[i][0]), test_split[i][1]) for i in (1, 300, 500)]
    s = compose(background, crops, [120, 150, 100], rng, "hd")
    return s.image, [f.box for f in s.faces]


def _found(detector: FaceDetector, img: np.ndarray, boxes: list[tuple[int, ...]]) -> int:
    d = detector.detect(img)
    d = d.select(d.scores >= 0.5)
    from evaluation import hit

    if not boxes or not len(d):
        return 0
    # a face counts as found by a detection centred in it at 0.5-1.5x its height (or IoU >= 0.5)
    m = hit(d.boxes.astype(float), np.asarray(boxes, float))
    return int((m >= 0.5).any(axis=0).sum())


def test_detector_finds_faces_in_composed_scene(detector: FaceDetector, background: np.ndarray,
                                                test_split: list[tuple[Path, int]]) -> None:
    img, boxes = _scene(background, test_split)
    assert _found(detector, img, boxes) >= 1


def test_blur_makes_faces_undetectable(detector: FaceDetector, background: np.ndarray,
                                       test_split: list[tuple[Path, int]]) -> None:
    img, boxes = _scene(background, test_split)
    faces = detector.detect(img)
    assert _found(detector, img, boxes) >= 1
    blurred = blur_faces(img, faces)
    assert blurred.shape == img.shape and not np.shares_memory(blurred, img)
    assert _found(detector, blurred, boxes) == 0
    after = detector.detect(blurred)
    assert len(after.select(after.scores >= 0.3)) <= len(faces.select(faces.scores >= 0.3)) - 1


def test_blur_defeats_a_stronger_detector_setting(detector: FaceDetector, background: np.ndarray,
                                                  test_split: list[tuple[Path, int]]) -> None:
    from civicam.analytics.faces import create_detector

    img, boxes = _scene(background, test_split)
    found = [b for b in boxes if _found(detector, img, [b])]  # blur covers what the detector found
    assert found
    strong = create_detector(options={"min_score": 0.3, "side": 1280})  # the frame at full size
    assert _found(strong, blur_faces(img, detector.detect(img)), found) == 0
