"""The gateway's group commit (edge/batching.py) with a recording ``send`` in place of the hub: which
entries travel together, that each lane gets its own answer, and failures reach every lane of a batch."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from civicam.edge.batching import Closed, GroupSender


class Recorder:
    def __init__(self, fail: set[int] | None = None) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail or set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a request is on the wire

    def __call__(self, entries: Sequence[int]) -> list[str]:
        self.entered.set()
        self.gate.wait()
        self.calls.append(list(entries))
        if self.fail & set(entries):
            raise ConnectionError(f"batch {list(entries)} lost")
        return [f"stored {e}" for e in entries]


def _lanes(sender: GroupSender[int, str], entries: Sequence[int]) -> dict[int, str | BaseException]:
    out: dict[int, str | BaseException] = {}

    def lane(e: int) -> None:
        try:
            out[e] = sender.submit(e)
        except BaseException as exc:  # noqa: BLE001  the lane's outcome is the test's subject
            out[e] = exc

    threads = [threading.Thread(target=lane, args=(e,)) for e in entries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return out


def test_entries_waiting_together_go_in_one_request_each_with_its_answer() -> None:
    send = Recorder()
    # A window far longer than the test: the batch goes because it is full, not because time passed.
    sender = GroupSender(send, window_s=60, max_items=4)
    got = _lanes(sender, [1, 2, 3, 4])
    assert got == {e: f"stored {e}" for e in (1, 2, 3, 4)}
    assert len(send.calls) == 1 and sorted(send.calls[0]) == [1, 2, 3, 4] and list(sender.recent) == [4]
    sender.close()


def test_a_lone_entry_goes_once_its_window_is_over() -> None:
    now = [0.0]
    send = Recorder()
    sender = GroupSender(send, window_s=0.0, max_items=8, clock=lambda: now[0])
    assert sender.submit(7) == "stored 7" and send.calls == [[7]]
    sender.close()


def test_a_batch_never_exceeds_max_items_and_entries_during_a_send_go_next() -> None:
    send = Recorder()
    send.gate.clear()  # the first batch is held on the wire
    sender = GroupSender(send, window_s=60, max_items=2)
    first = threading.Thread(target=lambda: _lanes(sender, [1, 2]))
    first.start()
    assert send.entered.wait(10)  # the first batch is on the wire
    rest = threading.Thread(target=lambda: _lanes(sender, [3, 4, 5, 6]))
    rest.start()
    send.gate.set()
    first.join(10)
    rest.join(10)
    assert [len(c) for c in send.calls] == [2, 2, 2]
    assert sorted(e for c in send.calls for e in c) == [1, 2, 3, 4, 5, 6]
    sender.close()


def test_a_failed_request_fails_every_entry_of_its_batch_only() -> None:
    send = Recorder(fail={2})
    sender = GroupSender(send, window_s=60, max_items=2)
    got = _lanes(sender, [1, 2])
    assert all(isinstance(v, ConnectionError) for v in got.values())
    assert _lanes(sender, [3, 4]) == {3: "stored 3", 4: "stored 4"}
    sender.close()


def test_wrong_answer_count_is_an_error_not_a_misdelivery() -> None:
    sender: GroupSender[int, str] = GroupSender(lambda entries: ["only one"], window_s=60, max_items=2)
    got = _lanes(sender, [1, 2])
    assert all(isinstance(v, RuntimeError) and "1 results for a batch of 2" in str(v) for v in got.values())
    sender.close()


def test_closed_sender_refuses_and_releases_waiting_entries() -> None:
    send = Recorder()
    sender = GroupSender(send, window_s=60, max_items=10)
    waiting = threading.Thread(target=lambda: result.update(_lanes(sender, [1])))
    result: dict[int, str | BaseException] = {}
    waiting.start()
    while not sender._waiting:  # noqa: SLF001  the entry is queued
        threading.Event().wait(0.001)
    sender.close()
    waiting.join(10)
    assert isinstance(result[1], Closed) and send.calls == []
    with pytest.raises(Closed):
        sender.submit(2)


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        GroupSender(lambda e: [], window_s=-1, max_items=2)
    with pytest.raises(ValueError):
        GroupSender(lambda e: [], window_s=0, max_items=0)
