"""Group commit for the gateway's camera lanes: segments finished at about the same time go in one request.

Each camera's lane stays what it was (one segment at a time, in order, its own backoff); ``submit`` blocks
the lane until its segment's answer is back. One sender thread takes the waiting segments once the first
of them has waited ``window_s`` (or ``max_items`` are in), sends them together and hands each lane its own
result. Segments finished while a batch is on the wire have waited by the time it is back, so they go next
without another window.

Generic over what is sent (``send`` takes the entries and returns one result per entry, in order, or
raises: then every entry of that batch gets the exception), so the logic is tested without a hub.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

E = TypeVar("E")
R = TypeVar("R")


class Closed(Exception):
    """The sender was closed before this entry was sent."""


@dataclass
class _Slot(Generic[E, R]):
    entry: E
    since: float
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


class GroupSender(Generic[E, R]):
    def __init__(self, send: Callable[[Sequence[E]], Sequence[R]], window_s: float, max_items: int,
                 clock: Callable[[], float] = time.monotonic, name: str = "batches") -> None:
        if max_items < 1 or window_s < 0:
            raise ValueError("max_items must be >= 1 and window_s >= 0")
        self._send, self.window_s, self.max_items, self._clock = send, window_s, max_items, clock
        self._cond = threading.Condition()
        self._waiting: list[_Slot[E, R]] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._name = name
        # What was sent (health, benchmarks, tests): requests, segments in them, the largest, the latest sizes.
        self.requests = self.items = self.largest = 0
        self.recent: deque[int] = deque(maxlen=256)

    def submit(self, entry: E) -> R:
        """Send ``entry`` with whatever else is waiting; its result, or its batch's exception raised here."""
        slot: _Slot[E, R] = _Slot(entry, self._clock())
        with self._cond:
            if self._closed:
                raise Closed("the gateway is stopping")
            self._waiting.append(slot)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def close(self) -> None:
        """Stop: entries not yet sent get ``Closed``; a batch on the wire finishes."""
        with self._cond:
            self._closed = True
            left, self._waiting = self._waiting, []
            self._cond.notify_all()
            thread = self._thread
        for slot in left:
            slot.error = Closed("the gateway is stopping")
            slot.done.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _next_batch(self) -> list[_Slot[E, R]] | None:
        """Wait for the next batch: the first waiting entry's window over, or the batch full. None: closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._waiting:
                    left = self._waiting[0].since + self.window_s - self._clock()
                    if left <= 0 or len(self._waiting) >= self.max_items:
                        batch, self._waiting = self._waiting[:self.max_items], self._waiting[self.max_items:]
                        return batch
                    self._cond.wait(left)
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self.requests += 1
            self.items += len(batch)
            self.largest = max(self.largest, len(batch))
            self.recent.append(len(batch))
            try:
                results = list(self._send([s.entry for s in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            except BaseException as exc:  # every lane of the batch sees why and retries on its own
                for s in batch:
                    s.error = exc
                    s.done.set()
                continue
            for s, r in zip(batch, results, strict=True):
                s.result = r
                s.done.set()
