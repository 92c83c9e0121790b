"""The time code the RTSP test server paints into frames (tests/support/timecode.py): layout and round trip."""

from __future__ import annotations

import random

import pytest

from support import timecode as tc

Y_SIZE = tc.WIDTH * tc.HEIGHT


def luma(value: int) -> bytes:
    frame: bytes = tc.frame_i420(value)
    return frame[:Y_SIZE]


@pytest.mark.parametrize("value", [0, 1, 1_700_000_000_123, 1_785_000_000_999, (1 << tc.VALUE_BITS) - 1])
def test_round_trip(value: int) -> None:
    assert tc.decode_luma(luma(value), tc.WIDTH, tc.HEIGHT) == value


def test_frame_is_i420_of_the_layout_size() -> None:
    frame = tc.frame_i420(123)
    assert len(frame) == Y_SIZE * 3 // 2
    assert set(frame[Y_SIZE:]) == {128}  # no colour: chroma is neutral


def test_blocks_fit_the_frame_on_macroblock_boundaries() -> None:
    assert tc.X0 % 16 == 0 and tc.Y0 % 16 == 0 and tc.BLOCK_W % 16 == 0 and tc.BLOCK_H % 16 == 0
    assert tc.X0 + tc.BITS * tc.BLOCK_W <= tc.WIDTH and tc.Y0 + tc.BLOCK_H <= tc.HEIGHT
    assert tc.VALUE_BITS >= 42  # Unix time in ms until the year 2109


def test_row_paints_marker_bits_as_white_and_black_blocks() -> None:
    row = tc.code_row(0)
    for i, bit in enumerate(tc.MARKER):
        block = row[tc.X0 + i * tc.BLOCK_W: tc.X0 + (i + 1) * tc.BLOCK_W]
        assert set(block) == {tc.WHITE if bit else tc.BLACK}
    assert set(row[: tc.X0]) == {tc.GREY}


@pytest.mark.parametrize("width,height", [(640, 360), (1920, 1080)])
def test_decodes_a_scaled_frame(width: int, height: int) -> None:
    src = luma(1_700_000_000_456)
    scaled = bytes(src[(y * tc.HEIGHT // height) * tc.WIDTH + x * tc.WIDTH // width]
                   for y in range(height) for x in range(width))
    assert tc.decode_luma(scaled, width, height) == 1_700_000_000_456


def test_survives_noise_and_a_stride() -> None:
    rng = random.Random(7)
    stride = tc.WIDTH + 64
    rows = luma(1_700_000_000_789)
    noisy = bytearray()
    for y in range(tc.HEIGHT):
        line = rows[y * tc.WIDTH:(y + 1) * tc.WIDTH]
        noisy += bytes(min(255, max(0, v + rng.randint(-60, 60))) for v in line) + bytes(64)
    assert tc.decode_luma(bytes(noisy), tc.WIDTH, tc.HEIGHT, stride) == 1_700_000_000_789


def test_paints_onto_a_backdrop_and_keeps_the_rest_of_it() -> None:
    rng = random.Random(3)
    backdrop = bytes(rng.randrange(60, 200) for _ in range(tc.FRAME_BYTES))
    frame = tc.frame_i420(1_700_000_000_321, backdrop)
    band = slice(tc.Y0 * tc.WIDTH, (tc.Y0 + tc.BLOCK_H) * tc.WIDTH)
    assert len(frame) == tc.FRAME_BYTES
    assert frame[: band.start] == backdrop[: band.start] and frame[band.stop:] == backdrop[band.stop:]
    assert tc.decode_luma(frame[:Y_SIZE], tc.WIDTH, tc.HEIGHT) == 1_700_000_000_321
    with pytest.raises(ValueError):
        tc.frame_i420(1, backdrop[:-1])


def test_no_code_or_a_damaged_code_reads_as_none() -> None:
    assert tc.decode_luma(bytes([tc.GREY]) * Y_SIZE, tc.WIDTH, tc.HEIGHT) is None
    bits = tc.bits_of(1_700_000_000_123)
    flipped = list(bits)
    flipped[len(tc.MARKER) + 20] ^= 1
    assert tc.decode_bits(bits) == 1_700_000_000_123
    assert tc.decode_bits(flipped) is None
    assert tc.decode_bits(bits[:-1]) is None


def test_refuses_a_value_too_wide() -> None:
    with pytest.raises(ValueError):
        tc.bits_of(1 << tc.VALUE_BITS)
    with pytest.raises(ValueError):
        tc.bits_of(-1)
