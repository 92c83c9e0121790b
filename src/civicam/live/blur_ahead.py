"""Blur ahead: while a camera's blurred live view is watched, each new segment is blurred before a player asks.

Blurring a segment (decode, detect, blur, encode) takes seconds; done when the player requests it, the
player stalls on every segment. Each fetch of a camera's blurred live playlist renews a lease on the
camera ("watched until"); while it holds, the newest segments of that camera are handed to a small pool of
worker threads as soon as they are published, so the player's request finds the blurred copy cached, or
waits on the transcode already running (``BlurredCache`` shares one transcode per segment). A view nobody
fetches any more expires after a few target durations and costs nothing. Work waits in a bounded queue:
when blurring is slower than real time the oldest waiting segment is dropped rather than the queue growing
(a player that still wants it has it blurred on request, as without blurring ahead).

Only blurred copies are made here and nothing is served: what a player gets is still decided by the
segment endpoint, so no unblurred byte can leave on this path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Sequence
from typing import Protocol

from civicam.storage.models import Segment

LEASE_TARGETS = 3.0  # a view counts as watched this many target durations after its last playlist fetch
AHEAD = 1  # the newest listed segment: where a player starts (EXT-X-START is one target back), then each new one
POLL_S = 0.5  # how often a watched camera is looked at for a newly published segment
MAX_AUTO_WORKERS = 2  # transcodes are CPU heavy (a detector and an encoder each); one per core, at most this
FAILED_KEPT = 256  # failed segments remembered so they are not tried again and again


class Blurrer(Protocol):
    """What blurring ahead needs of the blurred cache (live/privacy.py ``BlurredCache``)."""

    def get(self, seg: Segment) -> object: ...

    def ready(self, seg: Segment) -> bool: ...

    def making(self, seg: Segment) -> bool: ...

    def busy(self, camera_id: int) -> bool: ...


def auto_workers(cores: int | None = None) -> int:
    """The default pool size: one worker per core, at most ``MAX_AUTO_WORKERS``.

    >>> auto_workers(1), auto_workers(16)
    (1, 2)
    """
    return max(1, min(MAX_AUTO_WORKERS, cores if cores is not None else (os.cpu_count() or 1)))


class Leases:
    """Per camera, until when its blurred live view counts as watched; renewed by each playlist fetch."""

    def __init__(self, hold_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_s, self._clock = hold_s, clock
        self._until: dict[int, float] = {}

    def renew(self, camera_id: int) -> None:
        self._until[camera_id] = self._clock() + self.hold_s

    def held(self, camera_id: int) -> bool:
        return self._until.get(camera_id, float("-inf")) > self._clock()

    def watched(self) -> list[int]:
        """The cameras whose lease holds now, in id order; expired leases are forgotten."""
        now = self._clock()
        for cam in [c for c, until in self._until.items() if until <= now]:
            del self._until[cam]
        return sorted(self._until)


class PendingQueue:
    """Segments waiting for a worker, oldest offered first; at most ``bound``, the oldest dropped beyond it.

    Keyed by segment id, so offering a segment already waiting changes nothing.
    """

    def __init__(self, bound: int) -> None:
        self.bound = max(1, bound)
        self._items: OrderedDict[int, Segment] = OrderedDict()

    def offer(self, seg: Segment) -> list[int]:
        """Add ``seg`` unless it waits already; returns the ids dropped to stay within the bound."""
        if seg.id in self._items:
            return []
        self._items[seg.id] = seg
        dropped = []
        while len(self._items) > self.bound:
            dropped.append(self._items.popitem(last=False)[0])
        return dropped

    def take(self, eligible: Callable[[Segment], bool] | None = None) -> Segment | None:
        """The oldest waiting segment (that is ``eligible``), removed from the queue; None if there is none."""
        for seg_id, seg in self._items.items():
            if eligible is None or eligible(seg):
                del self._items[seg_id]
                return seg
        return None

    def __contains__(self, seg_id: object) -> bool:
        return seg_id in self._items

    def __len__(self) -> int:
        return len(self._items)


def choose(listed: Sequence[int], skip: Container[int], ahead: int = AHEAD) -> list[int]:
    """Of the listed segment ids (oldest first), the newest ``ahead`` not in ``skip``, oldest first.

    >>> choose([11, 12, 13, 14], skip={14}, ahead=2)
    [13]
    """
    return [s for s in listed[-ahead:] if s not in skip] if ahead > 0 else []


class BlurAhead:
    """Blurs the newest segments of watched cameras on worker threads, ahead of the players' requests.

    ``latest(camera_id, count)`` returns the newest published segments of a camera, oldest first (the same
    window the live playlist lists); it is called from a thread of this class.
    """

    def __init__(self, cache: Blurrer, latest: Callable[[int, int], Sequence[Segment]], *, workers: int,
                 target_s: float, window: int, log: logging.Logger, clock: Callable[[], float] = time.monotonic,
                 poll_s: float = POLL_S, ahead: int = AHEAD, max_pending: int | None = None) -> None:
        self.cache, self._latest, self.window, self.log = cache, latest, window, log
        self.workers, self.poll_s, self.ahead = max(1, workers), poll_s, ahead
        self.leases = Leases(LEASE_TARGETS * target_s, clock)
        # Room for every worker's next segment and the newest one: more would only fall further behind.
        self.pending = PendingQueue(max_pending if max_pending is not None else self.workers + ahead)
        self._running: set[int] = set()
        self._cameras_running: set[int] = set()
        self._failed: OrderedDict[int, None] = OrderedDict()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.blurred = self.dropped = self.failed = 0  # counters, for logs and tests

    def start(self) -> None:
        names = ["blur-ahead-poll", *(f"blur-ahead-{n}" for n in range(self.workers))]
        targets = [self._poll, *([self._work] * self.workers)]
        for name, target in zip(names, targets, strict=True):
            # Daemon: a transcode in progress must not keep a stopping process alive; close() waits a while.
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            while self.pending.take() is not None:
                pass
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def watch(self, camera_id: int, segs: Sequence[Segment]) -> None:
        """A blurred live playlist of the camera listing ``segs`` was fetched: renew its lease, queue work."""
        with self._cond:
            self.leases.renew(camera_id)
            self._offer(segs)
            self._cond.notify_all()

    def _offer(self, segs: Sequence[Segment]) -> None:
        """Queue the newest segments not blurred, waiting or failed (``_cond`` held)."""
        by_id = {s.id: s for s in segs}
        skip = {*self._running, *self._failed}
        for seg_id in choose(list(by_id), skip, self.ahead):
            seg = by_id[seg_id]
            if seg_id in self.pending or self.cache.ready(seg) or self.cache.making(seg):
                continue
            dropped = self.pending.offer(seg)
            self.dropped += len(dropped)
            if dropped:
                self.log.info("blurring ahead falls behind: dropped segments %s", dropped)

    def _poll(self) -> None:
        """While any view is watched, look for newly published segments (a player sees them only later)."""
        while True:
            with self._cond:
                cams = self.leases.watched()
                while not cams and not self._closed:
                    self._cond.wait()
                    cams = self.leases.watched()
                if self._closed:
                    return
            for cam in cams:
                try:
                    segs = self._latest(cam, self.window)
                except Exception:
                    self.log.exception("blurring ahead: cannot list the segments of camera %s", cam)
                    continue
                with self._cond:
                    if self.leases.held(cam):
                        self._offer(segs)
                        self._cond.notify_all()
            with self._cond:
                if not self._closed:
                    self._cond.wait(self.poll_s)

    def _free(self, seg: Segment) -> bool:
        """Whether a worker may start on ``seg`` now: one transcode per camera at a time, a player's included.

        A camera's segments are needed one after the other, and one transcode already uses every core it
        can (the detector is multi-threaded); a second would only slow down the one the player waits for,
        which matters most when blurring cannot keep up with the camera (``_cond`` held)."""
        return seg.camera_id not in self._cameras_running and not self.cache.busy(seg.camera_id)

    def _work(self) -> None:
        while True:
            with self._cond:
                seg = self.pending.take(self._free)
                while seg is None and not self._closed:
                    # Nothing to start, or only segments of busy cameras: look again when told or soon.
                    self._cond.wait(self.poll_s if len(self.pending) else None)
                    seg = self.pending.take(self._free)
                if seg is None:
                    return
                if not self.leases.held(seg.camera_id):
                    continue  # the view was left while this waited: nobody will ask for it
                self._running.add(seg.id)
                self._cameras_running.add(seg.camera_id)
            try:
                self.cache.get(seg)
                outcome = "blurred"
            except FileNotFoundError:
                outcome = "gone"  # deleted by retention meanwhile
            except Exception:
                self.log.exception("blurring ahead failed for segment %s of camera %s", seg.id, seg.camera_id)
                outcome = "failed"
            with self._cond:
                self._running.discard(seg.id)
                self._cameras_running.discard(seg.camera_id)
                self._cond.notify_all()
                if outcome == "blurred":
                    self.blurred += 1
                else:
                    self.failed += outcome == "failed"
                    self._failed[seg.id] = None
                    while len(self._failed) > FAILED_KEPT:
                        self._failed.popitem(last=False)
