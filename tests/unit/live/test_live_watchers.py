"""Which cameras are watched live: a lease per camera, renewed by each playlist fetch."""

from __future__ import annotations

import pytest

from civicam.live.watchers import LiveWatchers


@pytest.mark.parametrize(("touched_at", "now", "watched"), [
    (None, 0.0, False),  # never fetched
    (0.0, 0.0, True),
    (0.0, 10.0, True),  # within the lease
    (0.0, 10.01, False),  # past it
])
def test_a_camera_is_watched_for_the_lease_after_its_last_fetch(touched_at: float | None, now: float,
                                                                 watched: bool) -> None:
    t = [0.0]
    w = LiveWatchers(lease_s=10.0, clock=lambda: t[0])
    if touched_at is not None:
        t[0] = touched_at
        w.touch(3)
    t[0] = now
    assert w.watched(3) is watched
    assert w.watched(4) is False  # another camera


def test_each_fetch_renews_the_lease() -> None:
    t = [0.0]
    w = LiveWatchers(lease_s=10.0, clock=lambda: t[0])
    for step in range(5):
        t[0] = step * 8.0
        w.touch(1)
        assert w.watched(1)
    t[0] += 10.5
    assert not w.watched(1)
