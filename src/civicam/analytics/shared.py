"""Face detections one part of the hub has made on a segment, for the part that would make them again.

The blurred live pipeline (live/blurred_live.py) detects faces on every fifth frame of each segment it
blurs, as the recorder writes it; analytics (analytics/service.py) samples five frames a second of the same
segments a few seconds later and would decode and detect them a second time. The pipeline posts each
segment's detections here; analytics takes a segment's, once the pipeline has read the whole file, instead
of decoding it. What is posted is the first detection of each frame (on the camera's own picture, down to
the blur's lower score threshold; analytics keeps its own threshold), keyed by the segment file's path.

Within one process only: in cluster mode the API processes blur and the analytics workers decode. Held in
memory for a few dozen segments at most; nothing about people is kept beyond the boxes of one segment.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from civicam.analytics.detections import Detections


@dataclass
class Posted:
    """One segment's detections: seconds from the file's first frame, and the faces found there."""

    frames: list[tuple[float, Detections]] = field(default_factory=list)
    complete: bool = False


class DetectionBoard:
    """Thread-safe; bounded to ``keep`` segments (the oldest go first)."""

    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        self._posted: OrderedDict[str, Posted] = OrderedDict()
        self._cond = threading.Condition()

    def begin(self, key: str) -> None:
        """A segment is being read. Two pipelines of one camera (the full view and the wall's) both post:
        the first begins it, and their frames' duplicates fall out in the taker's sampling."""
        with self._cond:
            if key in self._posted:
                return
            self._posted[key] = Posted()
            while len(self._posted) > self._keep:
                self._posted.popitem(last=False)

    def post(self, key: str, t: float, faces: Detections) -> None:
        with self._cond:
            posted = self._posted.get(key)
            if posted is not None and not posted.complete:
                posted.frames.append((t, faces))

    def finish(self, key: str) -> None:
        """Every frame of the file has been detected (or none will be: ``abandon``)."""
        with self._cond:
            posted = self._posted.get(key)
            if posted is not None:
                posted.complete = True
                self._cond.notify_all()

    def abandon(self, key: str) -> None:
        with self._cond:
            self._posted.pop(key, None)
            self._cond.notify_all()

    def take(self, key: str, wait_s: float = 0.0) -> list[tuple[float, Detections]] | None:
        """A complete segment's detections in frame order (removed from the board), waiting up to
        ``wait_s`` for a segment still being read; None if the board has none for it."""
        with self._cond:
            self._cond.wait_for(lambda: key not in self._posted or self._posted[key].complete, wait_s)
            posted = self._posted.get(key)
            if posted is None or not posted.complete or not posted.frames:
                return None
            del self._posted[key]
            return sorted(posted.frames, key=lambda f: f[0])
