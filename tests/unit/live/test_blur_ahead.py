"""Blurring ahead of blurred live players: leases, the bounded queue and what is chosen (pure tables), and the
worker pool against a fake cache with an injected clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from civicam.live.blur_ahead import AHEAD, BlurAhead, Leases, PendingQueue, auto_workers, choose
from civicam.storage.models import Segment

LOG = logging.getLogger("test.blur_ahead")


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _seg(n: int, camera_id: int = 7) -> Segment:
    return Segment(id=camera_id * 100 + n, camera_id=camera_id)


@pytest.mark.parametrize(("renewed_at", "now", "held"), [
    ([0.0], 11.9, True),          # within three 4 s targets of the last fetch
    ([0.0], 12.0, False),         # expired exactly at the end of the hold
    ([0.0, 10.0], 21.0, True),    # every fetch renews it
    ([], 0.0, False),             # never opened: never watched
])
def test_lease_holds_for_three_target_durations_after_the_last_fetch(
        renewed_at: list[float], now: float, held: bool) -> None:
    clock = Clock(0.0)
    leases = Leases(3 * 4.0, clock)
    for t in renewed_at:
        clock.t = t
        leases.renew(7)
    clock.t = now
    assert leases.held(7) is held
    assert leases.watched() == ([7] if held else [])
    assert not leases.held(8)


def test_expired_leases_are_forgotten_and_others_kept() -> None:
    clock = Clock(0.0)
    leases = Leases(12.0, clock)
    leases.renew(3)
    clock.t = 5.0
    leases.renew(1)
    clock.t = 13.0
    assert leases.watched() == [1]
    clock.t = 17.0
    assert leases.watched() == []


@pytest.mark.parametrize(("bound", "offered", "dropped", "taken"), [
    (3, [1, 2], [], [1, 2]),                 # oldest offered first
    (2, [1, 2, 3, 4], [1, 2], [3, 4]),       # too slow: the oldest waiting are dropped, the newest kept
    (2, [1, 1, 2, 1], [], [1, 2]),           # a segment waits once however often it is offered
    (0, [5, 6], [5], [6]),                   # a bound under one still keeps the newest
])
def test_pending_queue_is_bounded_dropping_the_oldest(bound: int, offered: list[int], dropped: list[int],
                                                      taken: list[int]) -> None:
    q = PendingQueue(bound)
    out: list[int] = []
    for i in offered:
        out += q.offer(Segment(id=i, camera_id=7))
    assert out == dropped
    got = []
    while (seg := q.take()) is not None:
        got.append(seg.id)
    assert got == taken and len(q) == 0


@pytest.mark.parametrize(("listed", "skip", "ahead", "chosen"), [
    ([11, 12, 13, 14], set(), 2, [13, 14]),       # a view opens: where the player starts and the newest
    ([11, 12, 13, 14], {13}, 2, [14]),            # steady: only the newly published one
    ([11, 12, 13, 14], {13, 14}, 2, []),
    ([11], set(), 2, [11]),
    ([], set(), 2, []),
    ([11, 12], set(), 0, []),
])
def test_choose_the_newest_segments_not_started(listed: list[int], skip: set[int], ahead: int,
                                                chosen: list[int]) -> None:
    assert choose(listed, skip, ahead) == chosen


def test_auto_workers_one_per_core_capped() -> None:
    assert [auto_workers(n) for n in (1, 2, 4, 64)] == [1, 2, 2, 2]


# --- the pool, against a fake cache -----------------------------------------------------------------------


class FakeCache:
    """Records what was blurred; each ``get`` blocks until ``release`` is set, like a transcode in progress."""

    def __init__(self) -> None:
        self.done: set[int] = set()
        self.calls: list[int] = []
        self.in_progress: set[int] = set()
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def get(self, seg: Segment) -> object:
        with self._lock:
            self.calls.append(seg.id)
            self.in_progress.add(seg.id)
        self.release.wait(10)
        with self._lock:
            self.in_progress.discard(seg.id)
            self.done.add(seg.id)
        return object()

    def ready(self, seg: Segment) -> bool:
        return seg.id in self.done

    def making(self, seg: Segment) -> bool:
        return seg.id in self.in_progress

    def busy(self, camera_id: int) -> bool:
        return any(i // 100 == camera_id for i in self.in_progress)  # ids here: camera * 100 + n


def _until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # polling interval of a deadline-bounded wait


def _pool(cache: FakeCache, published: dict[int, list[Segment]], clock: Clock, **kw: int) -> BlurAhead:
    def latest(cam: int, n: int) -> Sequence[Segment]:
        return published.get(cam, [])[-n:]

    ahead = BlurAhead(cache, latest, target_s=4.0, window=4, log=LOG, clock=clock, poll_s=0.01,
                      workers=kw.get("workers", 1), max_pending=kw.get("max_pending"), ahead=kw.get("ahead", AHEAD))
    ahead.start()
    return ahead


def test_watched_camera_gets_its_newest_segment_blurred_and_new_ones_as_published() -> None:
    cache, clock = FakeCache(), Clock()
    published = {7: [_seg(i) for i in (11, 12, 13, 14)], 8: [_seg(i, 8) for i in (21, 22)]}
    ahead = _pool(cache, published, clock)
    try:
        ahead.watch(7, published[7])
        _until(lambda: cache.done == {714}, "the newest segment blurred")
        published[7].append(_seg(15))  # published after the fetch: the poller finds it before the player
        _until(lambda: 715 in cache.done, "the newly published segment blurred")
        assert cache.calls == [714, 715]  # each once
        assert {s.id for s in published[7] if cache.ready(s)} == {714, 715}
        # The view is left: once the lease expires, a new segment is not blurred.
        clock.t += 12.0
        published[7].append(_seg(16))
        time.sleep(0.1)  # several poll intervals: asserting that nothing happens
        assert cache.calls == [714, 715]  # and camera 8, never watched, got nothing
    finally:
        ahead.close()


def test_too_slow_drops_the_oldest_waiting_and_skips_views_left_meanwhile() -> None:
    cache, clock = FakeCache(), Clock()
    cache.release.clear()  # the transcode in progress does not finish until released
    segs = [_seg(i) for i in range(11, 17)]
    ahead = _pool(cache, {}, clock, max_pending=2)
    try:
        ahead.watch(7, segs[:1])
        _until(lambda: cache.calls == [711], "the first transcode started")
        for n in range(2, 7):
            ahead.watch(7, segs[:n])  # 12..16 published while 11 is still being blurred
        # Each new one pushed out the oldest waiting: 12, 13 and 14 dropped; the newest two wait.
        assert ahead.dropped == 3 and len(ahead.pending) == 2 and 715 in ahead.pending and 716 in ahead.pending
        clock.t += 12.0  # the view is left before the worker is free
        cache.release.set()
        _until(lambda: len(ahead.pending) == 0, "the queue emptied")
        time.sleep(0.05)  # asserting that nothing happens
        assert cache.calls == [711]  # nothing blurred for a view nobody watches any more
    finally:
        ahead.close()


def test_one_transcode_per_camera_at_a_time_players_included() -> None:
    cache, clock = FakeCache(), Clock()
    cache.release.clear()
    ahead = _pool(cache, {}, clock, workers=2, ahead=2)
    try:
        ahead.watch(7, [_seg(11), _seg(12)])
        ahead.watch(8, [_seg(21, 8)])
        # Two workers: one on each camera; camera 7's second segment waits for its first.
        _until(lambda: sorted(cache.calls) == [711, 821], "one transcode per camera")
        time.sleep(0.05)  # asserting that nothing else starts
        assert sorted(cache.calls) == [711, 821] and 712 in ahead.pending
        cache.release.set()
        _until(lambda: 712 in cache.done, "camera 7's next segment, once its first is done")
        # A player's own transcode of a camera (not started here) holds that camera's work back too.
        cache.release.clear()
        cache.in_progress.add(713)
        ahead.watch(7, [_seg(13), _seg(14)])
        time.sleep(0.05)  # asserting that nothing starts
        assert 714 not in cache.calls
        cache.in_progress.discard(713)
        cache.done.add(713)
        cache.release.set()
        _until(lambda: 714 in cache.done, "camera 7's newest segment once the player's transcode ended")
    finally:
        ahead.close()
