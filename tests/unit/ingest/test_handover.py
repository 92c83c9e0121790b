"""Where a handover's new recorder starts (pure), and what it holds meanwhile."""

from __future__ import annotations

import pytest

from civicam.ingest.handover import Handover, HeldGops, Join, join_point


@pytest.mark.parametrize(("keys", "since", "expected"), [
    # The keyframe the old recorder stopped on, seen a delivery delay apart: continue it exactly.
    ([10.0, 12.0, 14.0], 12.03, Join(1, 0.03)),
    ([10.0, 12.0, 14.0], 11.95, Join(1, -0.05)),
    ([10.0, 12.0, 14.0], 14.9, Join(2, 0.9)),
    # Half a GOP or more away: not that keyframe. Start at the next one (a gap), never before ``since``.
    ([10.0, 12.0, 14.0], 11.0, Join(1)),
    ([10.0, 11.0], 10.5, Join(1)),
    # The held keyframes all came after the old recording ended (released late): the first one, a gap.
    ([20.0, 22.0], 12.0, Join(0)),
    # Every held keyframe is before ``since`` (the old recorder ran on): wait for the next one.
    ([10.0, 12.0], 13.5, None),
    ([10.0], 12.0, None),
    ([], 12.0, None),
    # Nothing recorded before: the newest keyframe.
    ([10.0, 12.0], None, Join(1)),
    # A single keyframe, no GOP known yet: within (not at) the largest shift allowed.
    ([12.0], 12.5, Join(0, 0.5)),
    ([12.0], 11.5, Join(0, -0.5)),
    # A long GOP does not allow a shift beyond MAX_SHIFT_S.
    ([10.0, 20.0], 11.5, Join(1)),
])
def test_join_point(keys: list[float], since: float | None, expected: Join | None) -> None:
    got = join_point(keys, since)
    if expected is None or got is None:
        assert got == expected
    else:
        assert got.index == expected.index and got.shift_s == pytest.approx(expected.shift_s)


def test_join_never_starts_before_since() -> None:
    keys = [float(k) for k in range(0, 40, 2)]
    for tenth in range(0, 400):
        since = tenth / 10
        join = join_point(keys, since)
        if join is not None:
            assert keys[join.index] + join.shift_s >= since - 1e-9


def test_held_gops_keep_whole_gops_within_the_window() -> None:
    held: HeldGops[int] = HeldGops(keep_ticks=4)
    held.add(1, False, -1, 10)  # before any keyframe: nothing can start with it
    for t in range(12):
        held.add(t, t % 2 == 0, t, 10)
    assert held.key_ticks() == [6, 8, 10]
    assert held.from_key(0) == [6, 7, 8, 9, 10, 11] and held.from_key(2) == [10, 11]
    assert held.bytes == 60


def test_held_gops_bounded_by_bytes_but_never_below_one_gop() -> None:
    held: HeldGops[int] = HeldGops(keep_ticks=10**9, max_bytes=65)
    for t in range(11):
        held.add(t, t % 3 == 0, t, 10)  # GOPs of 30 bytes: two fit under 65
    assert held.key_ticks() == [3, 6, 9] and held.from_key(0)[0] == 3 and held.bytes == 80
    big: HeldGops[int] = HeldGops(keep_ticks=10**9, max_bytes=1)
    big.add(0, True, 0, 100)
    big.add(1, True, 1, 100)
    assert big.key_ticks() == [1]


def test_handover_release_and_expiry() -> None:
    h = Handover(timeout_s=0)
    assert h.expired() and not h.released
    h.release(None)
    assert h.released and h.since is None and not h.expired()
