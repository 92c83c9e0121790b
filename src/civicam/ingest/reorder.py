"""Decode times for streams with B-frames: RTP carries presentation times in decode order, MP4 wants both.

Access units arrive in decode order stamped with their presentation time (RTP timestamp). The decode time
of the i-th unit is the i-th smallest presentation time: monotonic, equal to the presentation time at
every keyframe (so segments still start and end on exact times) and at most a few frames before it
elsewhere. Knowing the i-th smallest needs the next ``depth`` units (the stream's reorder depth, from its
SPS), so units leave ``depth`` units after they came in; ``depth`` 0 (no B-frames) adds no delay. A
stream that reorders more than it declared grows the depth instead of breaking the timeline.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Generic, TypeVar

from civicam.ingest.fmp4 import MAX_REORDER

T = TypeVar("T")


class Reorder(Generic[T]):
    """``push`` (presentation time, item) in decode order; get (decode time, presentation time, item) back.

    >>> r: Reorder[str] = Reorder(1)
    >>> [r.push(p, f"f{p}") for p in (0, 3, 1, 2)] + [r.drain()]
    [[], [(0, 0, 'f0')], [(1, 3, 'f3')], [(2, 1, 'f1')], [(3, 2, 'f2')]]
    """

    def __init__(self, depth: int) -> None:
        self.depth = max(0, min(MAX_REORDER, depth))
        self._waiting: deque[tuple[int, T]] = deque()
        self._times: list[int] = []  # presentation times not yet used as a decode time (a min-heap)
        self._last_dts: int | None = None
        self.grown = 0  # how often the stream reordered more than its depth

    def passthrough(self, pts: int) -> bool:
        """Whether a unit presented at ``pts`` needs no reordering (depth 0, in order): its DTS is its PTS.

        The common case (no B-frames) without a list, a tuple and a heap per unit; a unit out of order
        returns False, and ``push`` then grows the depth.
        """
        if self.depth or self._waiting or (self._last_dts is not None and pts < self._last_dts):
            return False
        self._last_dts = pts
        return True

    def push(self, pts: int, item: T) -> list[tuple[int, int, T]]:
        if self._last_dts is not None and pts < self._last_dts and self.depth < MAX_REORDER:
            # Presented before a decode time already given out: the stream reorders deeper than declared.
            self.depth += 1
            self.grown += 1
        self._waiting.append((pts, item))
        heapq.heappush(self._times, pts)
        out: list[tuple[int, int, T]] = []
        while len(self._waiting) > self.depth:
            out.append(self._pop())
        return out

    def drain(self) -> list[tuple[int, int, T]]:
        """What is still held (the stream ended): decode times from the remaining presentation times."""
        return [self._pop() for _ in range(len(self._waiting))]

    def _pop(self) -> tuple[int, int, T]:
        pts, item = self._waiting.popleft()
        dts = heapq.heappop(self._times)
        if self._last_dts is not None and dts < self._last_dts:
            dts = self._last_dts  # never backwards, whatever the stream does
        self._last_dts = dts
        return dts, pts, item

    def __len__(self) -> int:
        return len(self._waiting)
