"""A frame's production time (Unix ms) as a row of black and white luma blocks, and reading it back.

The RTSP test server's ``timecode`` mount paints it into every frame (encoder); the live-latency
benchmark reads it in the browser (a JavaScript copy of ``decode_luma`` built from these constants) and
from the camera stream directly (this module). Standard library only: the server runs under the system
python, which has gi but not the venv.

Layout (1280x720 canvas): one row of ``BITS`` blocks, each ``BLOCK_W`` x ``BLOCK_H`` luma pixels aligned to
16x16 macroblocks, starting at (``X0``, ``Y0``): an 8-bit start marker, the 48-bit value most significant bit
first, then an 8-bit check (XOR of the value's six bytes with 0xA5). White is a one, black a zero; the rest
of the frame is mid-grey (or a caller's backdrop, e.g. faces for the blurring path to work on), so the row
survives H.264 at ~2 Mbit/s untouched in practice. ("Black" and "white" are dark and light grey, below.)

>>> decode_luma(frame_i420(1_700_000_000_123)[:WIDTH * HEIGHT], WIDTH, HEIGHT)
1700000000123
"""

from __future__ import annotations

WIDTH = 1280
HEIGHT = 720
BLOCK_W = 16
BLOCK_H = 32
X0 = 128
Y0 = 32
MARKER = (1, 0, 1, 1, 0, 0, 1, 0)
VALUE_BITS = 48
CHECK_BITS = 8
CHECK_SALT = 0xA5
BITS = len(MARKER) + VALUE_BITS + CHECK_BITS
# Dark and light grey rather than black and white: the face detector (rfb, at the blurring threshold) took
# the black-and-white band for faces in 34 of 60 frames on a grey picture (55 of 100 with the benchmark's
# faces beside it), so the blurred view blurred the code itself; at 88/168, in none of 100.
BLACK = 88
WHITE = 168
GREY = 128
THRESHOLD = (BLACK + WHITE) // 2

_GREY_ROW = bytes([GREY]) * WIDTH
_CHROMA = bytes([128]) * (WIDTH // 2 * HEIGHT // 2 * 2)
FRAME_BYTES = WIDTH * HEIGHT + len(_CHROMA)


def check_byte(value: int) -> int:
    """The 8-bit check of a 48-bit value: XOR of its six bytes and a salt (so 0 does not check to 0)."""
    out = CHECK_SALT
    for i in range(VALUE_BITS // 8):
        out ^= (value >> (8 * i)) & 0xFF
    return out


def bits_of(value: int) -> list[int]:
    """Marker, value and check as the list of bits painted left to right."""
    if not 0 <= value < 1 << VALUE_BITS:
        raise ValueError(f"time code {value} does not fit in {VALUE_BITS} bits")
    data = [(value >> (VALUE_BITS - 1 - i)) & 1 for i in range(VALUE_BITS)]
    check = check_byte(value)
    return [*MARKER, *data, *[(check >> (CHECK_BITS - 1 - i)) & 1 for i in range(CHECK_BITS)]]


def code_row(value: int) -> bytes:
    """One 1280-byte luma row of the block band for ``value``."""
    white, black = bytes([WHITE]) * BLOCK_W, bytes([BLACK]) * BLOCK_W
    blocks = b"".join(white if bit else black for bit in bits_of(value))
    return _GREY_ROW[:X0] + blocks + _GREY_ROW[X0 + len(blocks):]


def frame_i420(value: int, backdrop: bytes | None = None) -> bytes:
    """A whole 1280x720 I420 frame (Y, then U and V) carrying ``value``; bytes operations only.

    ``backdrop``: an I420 frame of the same size to paint the code onto (its band rows are replaced).
    """
    band = code_row(value) * BLOCK_H
    if backdrop is None:
        return b"".join((_GREY_ROW * Y0, band, _GREY_ROW * (HEIGHT - Y0 - BLOCK_H), _CHROMA))
    if len(backdrop) != FRAME_BYTES:
        raise ValueError(f"a backdrop must be one {WIDTH}x{HEIGHT} I420 frame ({FRAME_BYTES} bytes)")
    return b"".join((backdrop[: Y0 * WIDTH], band, backdrop[(Y0 + BLOCK_H) * WIDTH:]))


def sample_points(width: int = WIDTH, height: int = HEIGHT) -> list[tuple[int, int]]:
    """(x, y) of each block's centre in a frame of ``width`` x ``height`` (scaled from the 1280x720 layout)."""
    sx, sy = width / WIDTH, height / HEIGHT
    y = int((Y0 + BLOCK_H / 2) * sy)
    return [(int((X0 + BLOCK_W * i + BLOCK_W / 2) * sx), y) for i in range(BITS)]


def decode_bits(bits: list[int]) -> int | None:
    """The value, or None when the marker or the check does not match (no code, or a damaged one)."""
    if len(bits) != BITS or tuple(bits[: len(MARKER)]) != MARKER:
        return None
    value = 0
    for bit in bits[len(MARKER): len(MARKER) + VALUE_BITS]:
        value = value << 1 | bit
    check = 0
    for bit in bits[len(MARKER) + VALUE_BITS:]:
        check = check << 1 | bit
    return value if check == check_byte(value) else None


def decode_luma(y_plane: bytes, width: int, height: int, stride: int | None = None) -> int | None:
    """Read the code from a frame's luma plane (any size: the layout is scaled), averaging 3x3 per block."""
    stride = stride or width
    bits = []
    for x, y in sample_points(width, height):
        total = sum(y_plane[(y + dy) * stride + x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        bits.append(1 if total / 9 >= THRESHOLD else 0)
    return decode_bits(bits)
