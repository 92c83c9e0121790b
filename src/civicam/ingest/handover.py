"""Make-before-break handover of one camera from one recorder to another (a cluster moving it between nodes).

The new recorder connects first and *holds*: it receives the stream and keeps the last few GOPs in memory,
writing nothing. The old recorder then stops the usual way, at its next keyframe, so its last segment
ends on a segment boundary ``since``; only once that segment is in the index is the new recorder
released with ``since``. It starts its first segment at the held keyframe that the old one stopped on
(the stream is the same, so the same keyframe reached both within delivery jitter) and takes the old
one's time for it, so the index continues exactly where it stopped: no gap, no overlapping rows, and
sequence numbers that follow on (the old writer's rows are committed before the new one writes any).

Where that keyframe is no longer held (a slow release) the new recorder starts at the first held keyframe
after ``since`` and the supervisor records the difference as a ``handover`` gap; it never starts before
``since``, so two recorders' segments never overlap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")

# The most a new recorder's timeline is moved to continue the old one's: two receivers of one stream map
# a keyframe to wall times a delivery delay apart (milliseconds, a loop tick or two under load), never
# more than this; a larger difference is a different keyframe.
MAX_SHIFT_S = 1.0
KEEP_S = 10.0  # stream time held: a release that takes longer than this costs a gap, never an overlap
MAX_HELD_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Join:
    """Where the new recorder starts: the held keyframe ``index``, its time moved by ``shift_s`` seconds."""

    index: int
    shift_s: float = 0.0


def join_point(key_times: Sequence[float], since: float | None, max_shift_s: float = MAX_SHIFT_S) -> Join | None:
    """Pure: at which held keyframe (wall times, oldest first) a recording continuing at ``since`` starts.

    The keyframe nearest ``since`` within half a GOP (and ``max_shift_s``) is the one the old recorder
    stopped on: start there, moved onto ``since``. Else the first keyframe after ``since`` (a gap, never an
    overlap), or None while every held keyframe is before ``since`` (wait for the next one). With no
    ``since`` (nothing recorded before) the newest keyframe.

    >>> join_point([10.0, 12.0, 14.0], 12.25)
    Join(index=1, shift_s=0.25)
    >>> join_point([10.0, 12.0], 9.0), join_point([10.0, 12.0], 13.5), join_point([10.0, 12.0], None)
    (Join(index=0, shift_s=0.0), None, Join(index=1, shift_s=0.0))
    """
    if not key_times:
        return None
    if since is None:
        return Join(len(key_times) - 1)
    gops = [b - a for a, b in zip(key_times, key_times[1:], strict=False)]
    tolerance = min(max_shift_s, min(gops) / 2 if gops else max_shift_s)
    nearest = min(range(len(key_times)), key=lambda i: abs(key_times[i] - since))
    if abs(key_times[nearest] - since) < tolerance:
        return Join(nearest, since - key_times[nearest])
    after = next((i for i, t in enumerate(key_times) if t > since), None)
    return None if after is None else Join(after)


class HeldGops(Generic[T]):
    """The units of the last GOPs, keyframe first, trimmed to ``keep_ticks`` of stream and ``max_bytes``.

    >>> h: HeldGops[str] = HeldGops(keep_ticks=100)
    >>> for t, k in [(0, True), (50, False), (100, True), (150, False), (200, True)]:
    ...     h.add(t, k, f"u{t}", 1)
    >>> h.key_ticks(), h.from_key(0)
    ([100, 200], ['u100', 'u150', 'u200'])
    """

    def __init__(self, keep_ticks: int, max_bytes: int = MAX_HELD_BYTES) -> None:
        self.keep_ticks, self.max_bytes = keep_ticks, max_bytes
        self._gops: list[tuple[int, list[T], int]] = []  # (keyframe ticks, units, bytes)
        self.bytes = 0

    def add(self, ticks: int, key: bool, unit: T, size: int) -> None:
        if key:
            self._gops.append((ticks, [], 0))
            # Whole GOPs only, the newest always kept: it is what the new recording may start with.
            while len(self._gops) > 1 and (ticks - self._gops[0][0] > self.keep_ticks or self.bytes > self.max_bytes):
                self.bytes -= self._gops.pop(0)[2]
        elif not self._gops:
            return  # before the first keyframe nothing can start a segment
        first, units, held = self._gops[-1]
        units.append(unit)
        self._gops[-1] = (first, units, held + size)
        self.bytes += size

    def key_ticks(self) -> list[int]:
        return [g[0] for g in self._gops]

    def from_key(self, index: int) -> list[T]:
        """Every unit from the ``index``-th held keyframe on, in order."""
        return [u for _, units, _ in self._gops[index:] for u in units]


class Handover:
    """The new recorder's side of one handover, shared by its supervisor, its session and the service.

    ``receiving`` is set once the held session has a keyframe (the controller then stops the old one);
    ``release`` lets it record from ``since``; ``expired`` (no release in time: the controller gave up or
    died) makes the service drop it, since the old recorder may still be running.
    """

    def __init__(self, timeout_s: float, keep_s: float = KEEP_S) -> None:
        self.keep_s = keep_s
        self.receiving = threading.Event()
        self._released = threading.Event()
        self._since: datetime | None = None
        self._deadline = time.monotonic() + timeout_s

    def release(self, since: datetime | None) -> None:
        self._since = since
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    @property
    def since(self) -> datetime | None:
        """The old recording's end (valid once released)."""
        return self._since

    def expired(self) -> bool:
        return not self.released and time.monotonic() > self._deadline
