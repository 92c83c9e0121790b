"""Which segments to delete: a pure decision from ages, rules, holds, usage and quota; no I/O."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SegmentRef:
    """One indexed segment, as much as retention needs to know."""

    id: int
    camera_id: int
    start: datetime
    end: datetime
    bytes: int


@dataclass(frozen=True)
class HoldSpan:
    """An interval of one camera that must not be deleted (evidence hold or export in progress)."""

    camera_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Place:
    """Where a camera sits, for resolving camera > site > region rules."""

    site_id: int | None = None
    region_id: int | None = None


@dataclass(frozen=True)
class AgeRule:
    """Keep recordings of one camera, site or region for at most ``max_age``."""

    scope: str  # "camera", "site" or "region"
    scope_id: int
    max_age: timedelta


@dataclass(frozen=True)
class Space:
    """Disk figures: bytes used by recordings, the quota (0 = none) and its watermarks, free bytes and reserve."""

    used: int
    quota: int = 0
    high: float = 0.9
    low: float = 0.8
    free: int | None = None
    min_free: int = 0


@dataclass(frozen=True)
class Decision:
    """Segment ids to delete with why ("age" or "quota"), and whether space is still short (all held)."""

    delete: dict[int, str] = field(default_factory=dict)
    bytes_freed: int = 0
    still_short: bool = False


def max_age_for(camera_id: int, place: Place, rules: Iterable[AgeRule], default: timedelta) -> timedelta:
    """The most specific rule wins: camera, then site, then region, then the default."""
    by_scope: dict[tuple[str, int], timedelta] = {(r.scope, r.scope_id): r.max_age for r in rules}
    for key in (("camera", camera_id), ("site", place.site_id), ("region", place.region_id)):
        if key[1] is not None and (key[0], key[1]) in by_scope:
            return by_scope[(key[0], key[1])]
    return default


def is_held(seg: SegmentRef, holds: Iterable[HoldSpan]) -> bool:
    """Whether any hold of the segment's camera overlaps it."""
    return any(h.camera_id == seg.camera_id and h.start < seg.end and seg.start < h.end for h in holds)


class HoldIndex:
    """``is_held`` for many holds and many segments: each camera's holds merged into disjoint intervals,
    looked up by bisection, so a pass costs O(log holds) per segment instead of O(holds).

    >>> from datetime import datetime as t
    >>> idx = HoldIndex([HoldSpan(1, t(2026, 1, 1, 10), t(2026, 1, 1, 11))])
    >>> idx.held(SegmentRef(0, 1, t(2026, 1, 1, 10, 59), t(2026, 1, 1, 11, 1), 0))
    True
    """

    def __init__(self, holds: Iterable[HoldSpan]) -> None:
        spans: dict[int, list[tuple[datetime, datetime]]] = {}
        for h in holds:
            if h.start < h.end:
                spans.setdefault(h.camera_id, []).append((h.start, h.end))
        self._starts: dict[int, list[datetime]] = {}
        self._ends: dict[int, list[datetime]] = {}
        for cam, items in spans.items():
            merged: list[list[datetime]] = []
            for start, end in sorted(items):
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            self._starts[cam] = [m[0] for m in merged]
            self._ends[cam] = [m[1] for m in merged]

    def held(self, seg: SegmentRef) -> bool:
        starts = self._starts.get(seg.camera_id)
        if not starts:
            return False
        # The last merged hold starting before the segment ends is the only one that can overlap it.
        i = bisect.bisect_left(starts, seg.end) - 1
        return i >= 0 and self._ends[seg.camera_id][i] > seg.start


def bytes_to_free(space: Space) -> int:
    """How much to delete now: down to the low watermark once above the high one, and back to the reserve."""
    need = 0
    if space.quota > 0 and space.used > space.high * space.quota:
        need = space.used - int(space.low * space.quota)
    if space.free is not None and space.free < space.min_free:
        # Free a little more than the shortfall so the recorder does not flap between paused and running.
        need = max(need, space.min_free - space.free + space.min_free // 10)
    return max(0, need)


def decide(
    segments: Sequence[SegmentRef],
    *,
    now: datetime,
    places: Mapping[int, Place],
    rules: Sequence[AgeRule],
    default_max_age: timedelta,
    holds: Sequence[HoldSpan],
    space: Space,
) -> Decision:
    """Expired unheld segments go first; then, if space is short, the oldest unheld ones until it is not."""
    delete: dict[int, str] = {}
    freed = 0
    index = HoldIndex(holds)
    held = {s.id for s in segments if index.held(s)}
    ages: dict[int, timedelta] = {}
    for seg in segments:
        if seg.id in held:
            continue
        if seg.camera_id not in ages:
            ages[seg.camera_id] = max_age_for(seg.camera_id, places.get(seg.camera_id, Place()), rules,
                                              default_max_age)
        if seg.end <= now - ages[seg.camera_id]:
            delete[seg.id] = "age"
            freed += seg.bytes
    need = bytes_to_free(space) - freed
    if need > 0:
        for seg in sorted(segments, key=lambda s: (s.start, s.id)):
            if need <= 0:
                break
            if seg.id in held or seg.id in delete:
                continue
            delete[seg.id] = "quota"
            freed += seg.bytes
            need -= seg.bytes
    return Decision(delete=delete, bytes_freed=freed, still_short=need > 0)
