"""Blur regions between two detections cover a face wherever it is on the way (pure, no video)."""

from __future__ import annotations

import numpy as np
import pytest

from civicam.live.cover import PADDING, motion_cover


def _inside(box: np.ndarray, regions: np.ndarray) -> bool:
    return bool(((regions[:, :2] <= box[:2]) & (regions[:, 2:] >= box[2:])).all(1).any())


@pytest.mark.parametrize(("start", "step"), [
    ((100, 100, 140, 150), (12, 0)),    # walking across: 3 face widths between detections
    ((600, 300, 640, 350), (-9, 4)),    # diagonal, leftwards
    ((200, 200, 300, 320), (0, 0)),     # standing still
    ((500, 100, 524, 130), (8, -3)),    # small and fast: more than 1.5 widths a frame
])
def test_a_face_moving_between_detections_stays_covered(start: tuple[int, ...], step: tuple[int, int]) -> None:
    b0 = np.asarray(start, np.float32)
    shift = np.asarray([*step, *step], np.float32)
    b5 = b0 + 5 * shift  # the next detection, five frames on
    regions = motion_cover(b0[None], b5[None])
    assert len(regions) == 1
    assert all(_inside(b0 + k * shift, regions) for k in range(6))


def test_faces_found_once_are_covered_over_the_whole_interval() -> None:
    before = np.array([[10, 10, 50, 60]], np.float32)
    after = np.array([[12, 10, 52, 60], [900, 400, 960, 470]], np.float32)  # someone arrives
    regions = motion_cover(before, after)
    assert len(regions) == 2
    assert _inside(after[1], regions) and _inside(before[0], regions)
    # a face that left: its last box is kept
    assert _inside(after[1], motion_cover(after, before[:0]))
    assert len(motion_cover(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32))) == 0


def test_far_apart_or_differently_sized_boxes_are_not_one_face() -> None:
    a = np.array([[0, 0, 20, 20]], np.float32)
    far = np.array([[500, 0, 520, 20]], np.float32)
    big = np.array([[0, 0, 80, 80]], np.float32)
    assert len(motion_cover(a, far)) == 2 and len(motion_cover(a, big)) == 2
    pad = motion_cover(a, a)[0]
    assert pad.tolist() == pytest.approx([-20 * PADDING, -20 * PADDING, 20 + 20 * PADDING, 20 + 20 * PADDING])


def test_yuv_blur_smooths_inside_the_region_and_nothing_outside() -> None:
    from civicam.analytics.blur import blur_regions_yuv420

    h, w = 96, 128
    rng = np.random.default_rng(1)
    planes = rng.integers(0, 256, (h * 3 // 2, w)).astype(np.uint8)
    out = blur_regions_yuv420(planes, np.array([[33.0, 17.0, 81.0, 70.0]], np.float32), blocks=2)
    assert out.shape == planes.shape and not np.shares_memory(out, planes)
    y_in, y_out = planes[:h], out[:h]
    region = y_out[16:70, 32:81].astype(np.int16)  # start rounded down to even pixels
    # inside: a smooth gradient of 2x2 cells (neighbouring pixels differ by a few levels at most)
    assert np.abs(np.diff(region, axis=1)).max() <= 8 and np.abs(np.diff(region, axis=0)).max() <= 8
    mask = np.ones((h, w), bool)
    mask[16:70, 32:81] = False
    assert (y_out[mask] == y_in[mask]).all()
    u_in = planes[h:h + h // 4].reshape(h // 2, w // 2)
    u_out = out[h:h + h // 4].reshape(h // 2, w // 2)
    assert not (u_out[8:35, 16:41] == u_in[8:35, 16:41]).all() and (u_out[40:, :] == u_in[40:, :]).all()


def test_a_region_inside_another_adds_nothing_and_is_not_smeared_twice() -> None:
    """The outer region smeared to 2x2 cells leaves nothing finer inside it: the inner one is skipped
    (the blurred live view's regions nest: a face's box inside its motion hull)."""
    from civicam.analytics.blur import blur_regions_yuv420

    h, w = 96, 128
    planes = np.random.default_rng(2).integers(0, 256, (h * 3 // 2, w)).astype(np.uint8)
    outer = np.array([[10.0, 10.0, 90.0, 80.0]], np.float32)
    inner = np.array([[30.0, 20.0, 60.0, 50.0]], np.float32)
    both = blur_regions_yuv420(planes, np.concatenate([inner, outer, inner]), blocks=2)
    assert (both == blur_regions_yuv420(planes, outer, blocks=2)).all()
    # an overlapping, not nested, region is still smeared
    side = np.array([[80.0, 60.0, 120.0, 90.0]], np.float32)
    assert not (blur_regions_yuv420(planes, np.concatenate([outer, side]), 2) ==
                blur_regions_yuv420(planes, outer, 2)).all()
