"""Scaling yuv420p planes with OpenCV against FFmpeg's own scaler (the oracle)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from civicam.live import planes as yuv


def _picture(w: int, h: int) -> np.ndarray:
    """A smooth picture with detail in all three planes (gradients and a sharp-edged block)."""
    yy, xx = np.mgrid[0:h, 0:w]
    y = (16 + 200 * xx / w).astype(np.uint8)
    y[h // 4:h // 2, w // 4:w // 2] = 235
    u = (64 + 128 * yy[::2, ::2] / h).astype(np.uint8)
    v = (192 - 128 * xx[::2, ::2] / w).astype(np.uint8)
    return np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(h * 3 // 2, w)


@pytest.mark.parametrize(("src", "dst"), [((1280, 720), (640, 360)), ((1920, 1080), (640, 360)),
                                          ((640, 480), (640, 480)), ((320, 240), (640, 480))])
def test_scale_matches_ffmpeg(src: tuple[int, int], dst: tuple[int, int]) -> None:
    planes = _picture(*src)
    ours = yuv.scale(planes, *dst)
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    theirs = frame.reformat(width=dst[0], height=dst[1], format="yuv420p").to_ndarray()
    assert ours.shape == theirs.shape == (dst[1] * 3 // 2, dst[0])
    ys, ts = yuv.split(ours), yuv.split(theirs)
    for mine, ref in zip(ys, ts, strict=True):
        # Different filters (area vs FFmpeg's bilinear): the same picture within a few levels on average.
        assert np.abs(mine.astype(int) - ref.astype(int)).mean() < 3.0
    if src == dst:
        assert ours is planes  # nothing to do: no copy


def test_split_views_the_three_planes() -> None:
    planes = _picture(8, 4)
    y, u, v = yuv.split(planes)
    assert y.shape == (4, 8) and u.shape == v.shape == (2, 4)
    assert np.shares_memory(y, planes) and int(u[0, 0]) == 64 and int(v[0, 0]) == 192


def test_odd_sides_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        yuv.scale(_picture(8, 4), 5, 4)
