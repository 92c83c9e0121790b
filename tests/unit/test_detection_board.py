"""The board that carries the blurred live view's detections to analytics (analytics/shared.py)."""

from __future__ import annotations

import threading

from civicam.analytics.detections import Detections
from civicam.analytics.shared import DetectionBoard


def _faces(n: int) -> Detections:
    return Detections.from_lists([[10.0 * k, 0.0, 10.0 * k + 8, 8.0] for k in range(n)], [0.9] * n)


def test_a_segment_is_taken_once_complete_in_time_order_and_only_once() -> None:
    board = DetectionBoard()
    board.begin("a")
    board.post("a", 0.4, _faces(2))
    board.post("a", 0.0, _faces(1))
    assert board.take("a") is None  # still being read: the taker decodes it itself
    board.finish("a")
    got = board.take("a")
    assert got is not None and [(t, len(f)) for t, f in got] == [(0.0, 1), (0.4, 2)]
    assert board.take("a") is None
    board.post("a", 0.8, _faces(1))  # after it was taken (a late detection): nothing is kept
    assert board.take("a") is None


def test_take_waits_for_a_segment_being_read() -> None:
    board = DetectionBoard()
    board.begin("a")
    board.post("a", 0.0, _faces(1))
    release = threading.Timer(0.05, board.finish, args=("a",))
    release.start()
    got = board.take("a", wait_s=30)  # returns on finish, long before the wait is over
    release.join()
    assert got is not None and len(got) == 1


def test_an_abandoned_segment_is_not_offered_and_begin_does_not_reset() -> None:
    board = DetectionBoard()
    board.begin("a")
    board.post("a", 0.0, _faces(1))
    board.begin("a")  # a second pipeline of the same camera: keeps what the first posted
    board.finish("a")
    got = board.take("a")
    assert got is not None and len(got) == 1
    board.begin("b")
    board.abandon("b")
    board.finish("b")
    assert board.take("b") is None


def test_the_board_is_bounded() -> None:
    board = DetectionBoard(keep=3)
    for key in "abcd":
        board.begin(key)
        board.post(key, 0.0, _faces(1))
        board.finish(key)
    assert board.take("a") is None and board.take("d") is not None
