"""Fusing the passes of one detector over a frame and its mirror (analytics/fusion.py), against figures
worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from civicam.analytics.fusion import Pass, fuse, mirror_boxes


def _pass(boxes: list[list[float]], scores: list[float], probs: list[float]) -> Pass:
    return Pass(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                np.asarray(probs, np.float32))


def test_mirror_boxes_maps_a_flipped_frames_box_back() -> None:
    # In a 100 px wide frame flipped left to right, a box at x 10-30 was at x 70-90.
    got = mirror_boxes(np.array([[10, 5, 30, 25], [0, 0, 100, 50]], np.float32), 100)
    assert got.tolist() == [[70, 5, 90, 25], [0, 0, 100, 50]]
    assert mirror_boxes(got, 100).tolist() == [[10, 5, 30, 25], [0, 0, 100, 50]]


def test_one_face_seen_by_both_passes_is_one_box_weighted_by_score() -> None:
    a = _pass([[0, 0, 10, 10]], [0.9], [0.8])
    b = _pass([[1, 0, 11, 10]], [0.3], [0.2])  # IoU 90/110 = 0.82
    out = fuse([a, b])
    assert len(out.scores) == 1
    # box: (0.9 * [0,0,10,10] + 0.3 * [1,0,11,10]) / 1.2 = [0.25, 0, 10.25, 10]
    assert out.boxes[0] == pytest.approx([0.25, 0, 10.25, 10], abs=1e-5)
    assert out.scores[0] == pytest.approx(0.6)  # mean of 0.9 and 0.3, both passes found it
    assert out.mask_probs[0] == pytest.approx((0.9 * 0.8 + 0.3 * 0.2) / 1.2)


def test_a_face_one_pass_missed_keeps_half_its_score_and_faces_stay_apart() -> None:
    a = _pass([[0, 0, 10, 10], [50, 50, 70, 70]], [0.8, 0.6], [0.1, 0.9])
    b = _pass([[0, 0, 10, 10]], [0.8], [0.3])
    out = fuse([a, b])
    assert len(out.scores) == 2
    assert out.scores.tolist() == pytest.approx([0.8, 0.3])  # best first
    assert out.boxes[1].tolist() == [50, 50, 70, 70]
    assert out.mask_probs.tolist() == pytest.approx([0.2, 0.9])


def test_boxes_under_the_overlap_threshold_are_different_faces() -> None:
    a = _pass([[0, 0, 10, 10]], [0.9], [0.5])
    b = _pass([[5, 0, 15, 10]], [0.9], [0.5])  # IoU 50/150 = 0.33
    assert len(fuse([a, b]).scores) == 2
    assert len(fuse([a, b], iou_threshold=0.3).scores) == 1


def test_no_boxes() -> None:
    empty = _pass([], [], [])
    out = fuse([empty, empty])
    assert out.boxes.shape == (0, 4) and len(out.scores) == 0 and len(out.mask_probs) == 0
    assert len(fuse([]).scores) == 0
