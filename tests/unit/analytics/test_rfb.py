"""civicam's own face detector: the shipped model, its input sizes, and faces it must find and label.

The faces are the public-domain portrait (civicam.demo_media.portrait), bare and with a drawn mask, at
known places on a textured backdrop: the true boxes come from where the test pasted them.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from civicam.analytics.faces import create_detector
from civicam.analytics.rfb import DEFAULT_MODEL, RfbDetector
from civicam.demo_media import portrait
from support.faces import Walker, background, render


def _scene(size: int, masked: bool, at: tuple[int, int] = (400, 200)) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    face = portrait(masked)
    face = cv2.resize(face, (round(face.shape[1] * size / face.shape[0]), size), interpolation=cv2.INTER_AREA)
    img, boxes = render([Walker(face, at[0], at[1], 0, 0)], 0, background())
    return img, np.asarray(boxes, float)


def _found(det: RfbDetector, img: np.ndarray, truth: np.ndarray, min_score: float = 0.5) -> list[int]:
    from evaluation import hit

    d = det.detect(img)
    keep = d.scores >= min_score
    if not keep.any():
        return []
    m = hit(d.boxes[keep].astype(float), truth)
    return [int(np.argmax(m[:, j])) for j in range(len(truth)) if m[:, j].max() >= 0.5]


def test_the_shipped_model_is_small_and_takes_any_input_size() -> None:
    assert DEFAULT_MODEL.stat().st_size <= 3 * 2**20
    session = ort.InferenceSession(str(DEFAULT_MODEL), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and not all(isinstance(d, int) for d in inp.shape[2:])
    assert [o.name for o in session.get_outputs()] == ["scores", "offsets"]


@pytest.mark.parametrize("size", [40, 80, 160])
@pytest.mark.parametrize("masked", [False, True])
def test_finds_masked_and_bare_faces_and_labels_them(size: int, masked: bool) -> None:
    img, truth = _scene(size, masked)
    det = RfbDetector(min_score=0.3)
    d = det.detect(img)
    found = _found(det, img, truth)
    assert len(found) == 1, (d.boxes, d.scores)
    i = found[0]
    ok = d.scores >= 0.5
    assert int(ok.sum()) == 1  # nothing else on the backdrop reads as a face
    assert d.labels[i] == ("mask" if masked else "no_mask") and (d.probs[i] >= 0.5) == masked


def test_boxes_are_in_frame_pixels_whatever_the_input_size() -> None:
    img, truth = _scene(120, False, at=(900, 300))
    for side in (640, 960, 0):
        det = RfbDetector(min_score=0.5, side=side)
        assert _found(det, img, truth) == [0], side
    small = np.ascontiguousarray(img[200:488, 800:1184])  # a 384x288 camera: enlarged, boxes mapped back
    d = RfbDetector(min_score=0.5).detect(small)
    assert len(d) == 1 and (d.boxes[:, [0, 2]] <= 384).all() and (d.boxes[:, [1, 3]] <= 288).all()
    assert np.abs(d.boxes[0, [0, 1]] - (truth[0, [0, 1]] - [800, 200])).max() < 40


def test_empty_and_invalid_frames() -> None:
    det = create_detector()
    assert len(det.detect(np.full((720, 1280, 3), 110, np.uint8))) == 0
    assert len(det.detect(np.zeros((17, 23, 3), np.uint8))) == 0
    with pytest.raises(ValueError, match="BGR uint8"):
        det.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="BGR uint8"):
        det.detect(np.zeros((10, 10, 3), np.float32))


@pytest.mark.parametrize("at", [(0, 200), (150, 150), (310, 500)])
def test_the_mirrored_pass_puts_boxes_back_where_the_faces_are(at: tuple[int, int]) -> None:
    # A portrait 420x720 camera: its longer side is scaled to 640, its width to 373 and padded to 384 on the
    # right, so the mirrored input has the pad on its left; a box mapped back across the image's width
    # instead of the input's would be 12 px off.
    img, truth = _scene(100, at[0] % 2 == 1, at=(at[0] + 400, at[1]))
    img, truth = np.ascontiguousarray(img[:, 400:820]), truth - [400, 0, 400, 0]
    single, both = RfbDetector(min_score=0.3), RfbDetector(min_score=0.3, flip=True)
    one, fused = single.detect(img), both.detect(img)
    assert _found(both, img, truth) == [0]
    i, j = int(np.argmax(fused.scores)), int(np.argmax(one.scores))
    assert (fused.scores >= 0.5).sum() == 1 and fused.labels[i] == one.labels[j]
    # The fused box lies within a few pixels of the single pass's: the mirrored pass, mapped back, agrees.
    assert np.abs(fused.boxes[i] - one.boxes[j]).max() < 6, (fused.boxes[i], one.boxes[j])
    assert (fused.boxes[:, [0, 2]] <= 420).all() and (fused.boxes[:, 0] >= 0).all()


def test_mirrored_batches_match_frame_by_frame() -> None:
    frames = [_scene(s, m, at=(200 + 300 * k, 150))[0] for k, (s, m) in enumerate([(60, True), (120, False)])]
    det = RfbDetector(min_score=0.3, flip=True)
    batch = det.detect_batch(frames + [frames[0][:400, :700].copy()])
    for got, frame in zip(batch, frames + [frames[0][:400, :700].copy()], strict=True):
        alone = det.detect(frame)
        assert np.allclose(got.boxes, alone.boxes, atol=1e-3) and got.labels == alone.labels


def test_analytics_asks_rfb_for_the_mirrored_pass_only() -> None:
    from civicam.analytics.faces import ANALYTICS_MIN_SCORE, analytics_options

    assert analytics_options() == {"min_score": ANALYTICS_MIN_SCORE, "flip": True}
    assert analytics_options("rfb", mirror=False) == {"min_score": ANALYTICS_MIN_SCORE}
    assert analytics_options("haar") == {"min_score": ANALYTICS_MIN_SCORE}
    assert create_detector("rfb", analytics_options()).flip is True  # type: ignore[attr-defined]
