"""Aggregate arithmetic of entrance analytics: time buckets, compliance, and when a site breaches a rule.

Pure functions only; the database supplies 15-minute counts, everything coarser is derived here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

BASE = timedelta(minutes=15)


class Interval(StrEnum):
    quarter = "15m"
    hour = "1h"
    day = "1d"

    @property
    def span(self) -> timedelta:
        return {"15m": BASE, "1h": timedelta(hours=1), "1d": timedelta(days=1)}[self.value]


def bucket_start(ts: datetime, interval: Interval = Interval.quarter) -> datetime:
    """The start of the UTC bucket holding ``ts``.

    >>> bucket_start(datetime(2026, 5, 1, 10, 44, 59, tzinfo=UTC)).isoformat()
    '2026-05-01T10:30:00+00:00'
    """
    ts = ts.astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    span = interval.span
    return epoch + ((ts - epoch) // span) * span


@dataclass(frozen=True)
class Counts:
    """People through an entrance in some period, by mask label; never anything about who they were."""

    people: int = 0
    masked: int = 0
    unmasked: int = 0
    unknown: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.people + other.people, self.masked + other.masked, self.unmasked + other.unmasked,
                      self.unknown + other.unknown)

    @property
    def compliance(self) -> float | None:
        """Share of people whose mask state was seen who wore one; None when nobody's state was seen.

        People labelled unknown (face too small or unsure) are left out rather than counted either way.
        """
        seen = self.masked + self.unmasked
        return None if seen == 0 else self.masked / seen

    @classmethod
    def of_label(cls, label: str) -> Counts:
        return {"mask": cls(1, 1, 0, 0), "no_mask": cls(1, 0, 1, 0)}.get(label, cls(1, 0, 0, 1))


def rollup(rows: Iterable[tuple[datetime, Counts]], interval: Interval) -> list[tuple[datetime, Counts]]:
    """Sum 15-minute rows into ``interval`` buckets, oldest first.

    >>> t = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    >>> rollup([(t, Counts(2, 1, 1)), (t + BASE, Counts(1, 1))], Interval.hour)[0][1].people
    3
    """
    sums: dict[datetime, Counts] = {}
    for start, counts in rows:
        key = bucket_start(start, interval)
        sums[key] = sums.get(key, Counts()) + counts
    return sorted(sums.items())


def is_small_cell(people: int, k: int) -> bool:
    """Whether a cell (one camera, 15 minutes) is too small to publish: ``0 < people < k``.

    A cell of one person at a known door is a fact about that person; k or more, or none, is not.

    >>> is_small_cell(1, 5), is_small_cell(0, 5), is_small_cell(5, 5)
    (True, False, False)
    """
    return 0 < people < k


@dataclass(frozen=True)
class Published:
    """What a reader may see of one bucket: the sums of its publishable cells, and whether cells under the
    minimum size were left out (``withheld``). With nothing publishable left, the bucket is ``suppressed``."""

    counts: Counts
    withheld: bool = False

    @property
    def suppressed(self) -> bool:
        return self.withheld and self.counts.people == 0

    def __add__(self, other: Published) -> Published:
        return Published(self.counts + other.counts, self.withheld or other.withheld)


def publish(cells: Iterable[tuple[datetime, Counts]], interval: Interval, k: int) -> list[tuple[datetime, Published]]:
    """Sum cells (one camera's 15 minutes each) into ``interval`` buckets, leaving small cells out.

    Cells are the unit a reader can ask for (any camera they may see, 15-minute buckets), so every
    published figure, at any interval, window or scope, is a sum of cells that are themselves published:
    differencing totals, hours and quarters, or a site and its cameras, never gives a small cell back.
    """
    sums: dict[datetime, Published] = {}
    for start, counts in cells:
        key = bucket_start(start, interval)
        cell = Published(Counts(), True) if is_small_cell(counts.people, k) else Published(counts)
        sums[key] = sums.get(key, Published(Counts())) + cell
    return sorted(sums.items())


def published_total(buckets: Iterable[Published]) -> Published | None:
    """The sum of published buckets; None when there are none."""
    out: Published | None = None
    for b in buckets:
        out = b if out is None else out + b
    return out


@dataclass(frozen=True)
class Rule:
    """Alert when a site's compliance over ``window`` falls under ``threshold`` with at least ``min_people``."""

    threshold: float
    window: timedelta
    min_people: int


def breaches(counts: Counts, rule: Rule) -> bool:
    """Whether ``counts`` over the rule's window should raise an alert.

    >>> breaches(Counts(people=40, masked=20, unmasked=20), Rule(0.8, timedelta(hours=1), 30))
    True
    >>> breaches(Counts(people=10, masked=0, unmasked=10), Rule(0.8, timedelta(hours=1), 30))
    False
    """
    rate = counts.compliance
    return counts.people >= rule.min_people and rate is not None and rate < rule.threshold
