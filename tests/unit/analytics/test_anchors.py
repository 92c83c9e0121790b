"""Priors, box coding and NMS of the face detector (pure numpy; tables of known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from civicam.analytics.anchors import decode, encode, feature_sizes, iou_matrix, nms, priors


@pytest.mark.parametrize(("w", "h", "maps", "count"), [
    # the published 640x480 model's maps and its 17,640 priors
    (640, 480, [(80, 60), (40, 30), (20, 15), (10, 8)], 17640),
    (640, 384, [(80, 48), (40, 24), (20, 12), (10, 6)], 80 * 48 * 3 + 40 * 24 * 2 + 20 * 12 * 2 + 10 * 6 * 3),
    (64, 64, [(8, 8), (4, 4), (2, 2), (1, 1)], 8 * 8 * 3 + 4 * 4 * 2 + 2 * 2 * 2 + 3),
])
def test_feature_maps_and_prior_count(w: int, h: int, maps: list[tuple[int, int]], count: int) -> None:
    assert feature_sizes(w, h) == maps
    p = priors(w, h)
    assert p.shape == (count, 4) and p.dtype == np.float32
    assert (p >= 0).all() and (p <= 1).all()


def test_first_and_last_priors_are_where_the_published_model_has_them() -> None:
    p = priors(640, 480)
    # first cell of the stride-8 map, min sizes 10, 16, 24 px
    assert np.allclose(p[:3], [[4 / 640, 4 / 480, s / 640, s / 480] for s in (10, 16, 24)])
    # last cell of the 10x8 stride-64 map: centre (9.5 / 10, 7.5 / 8), sizes 128, 192, 256 clipped to 1
    assert p[-1].tolist() == pytest.approx([0.95, 7.5 / 8, 256 / 640, 256 / 480])


def test_encode_then_decode_is_identity() -> None:
    rng = np.random.default_rng(0)
    prior = priors(320, 192)[::37]
    xy = rng.uniform(0.0, 0.8, (len(prior), 2)).astype(np.float32)
    wh = rng.uniform(0.01, 0.2, (len(prior), 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], 1)
    assert np.allclose(decode(encode(boxes, prior), prior), boxes, atol=1e-5)
    assert np.allclose(decode(np.zeros_like(prior), prior),
                       np.concatenate([prior[:, :2] - prior[:, 2:] / 2, prior[:, :2] + prior[:, 2:] / 2], 1))


def test_iou_and_nms() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    assert iou_matrix(a, b)[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.55], np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 0, 3, 2]
    assert nms(boxes, scores, 0.3, limit=1).tolist() == [1]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3).tolist() == []
