"""Which cameras somebody watches live now, as one hub process sees it: a lease renewed by every fetch of a
camera's live playlist (players reload every part). A gateway streams a camera's segment in progress (live
view by parts, edge/stream.py) only while the hub says it is watched: a camera nobody watches costs the hub
one request per segment, not one per part."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WATCH_LEASE_S = 15.0  # a camera stays watched this long after its last live playlist fetch


class LiveWatchers:
    """Thread-safe; ``clock`` is monotonic seconds.

    >>> t = [0.0]; w = LiveWatchers(clock=lambda: t[0]); w.touch(7); t[0] = 14.0
    >>> w.watched(7), w.watched(8)
    (True, False)
    >>> t[0] = 15.5; w.watched(7)
    False
    """

    def __init__(self, lease_s: float = WATCH_LEASE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._lease_s = lease_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[int, float] = {}

    def touch(self, camera_id: int) -> None:
        with self._lock:
            self._seen[camera_id] = self._clock()

    def watched(self, camera_id: int) -> bool:
        with self._lock:
            seen = self._seen.get(camera_id)
            if seen is None:
                return False
            if self._clock() - seen > self._lease_s:
                del self._seen[camera_id]  # forgotten once it lapses: the map holds watched cameras only
                return False
            return True
