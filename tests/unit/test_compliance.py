"""Pure aggregate arithmetic: buckets, compliance, roll-ups and the alert decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civicam.domain.compliance import (
    BASE,
    Counts,
    Interval,
    Rule,
    breaches,
    bucket_start,
    is_small_cell,
    publish,
    published_total,
    rollup,
)

T = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "interval", "expected"),
    [
        (T + timedelta(minutes=14, seconds=59), Interval.quarter, T),
        (T + timedelta(minutes=15), Interval.quarter, T + BASE),
        (T + timedelta(minutes=59), Interval.hour, T),
        (T + timedelta(hours=13), Interval.day, datetime(2026, 5, 1, tzinfo=UTC)),
        (datetime(2026, 5, 1, 12, 7, tzinfo=UTC).astimezone(UTC), Interval.hour, T + timedelta(hours=2)),
    ],
)
def test_bucket_start(ts: datetime, interval: Interval, expected: datetime) -> None:
    assert bucket_start(ts, interval) == expected


@pytest.mark.parametrize(
    ("counts", "expected"),
    [(Counts(10, 8, 2, 0), 0.8), (Counts(10, 0, 0, 10), None), (Counts(), None), (Counts(5, 0, 4, 1), 0.0)],
)
def test_compliance_ignores_unknown(counts: Counts, expected: float | None) -> None:
    assert counts.compliance == expected


def test_labels_become_counts() -> None:
    total = Counts.of_label("mask") + Counts.of_label("no_mask") + Counts.of_label("unknown")
    assert total == Counts(3, 1, 1, 1)


def test_rollup_sums_quarters_into_hours_and_days() -> None:
    rows = [(T + i * BASE, Counts(1, 1, 0, 0)) for i in range(8)]
    hours = rollup(rows, Interval.hour)
    assert [(t.hour, c.people) for t, c in hours] == [(10, 4), (11, 4)]
    assert rollup(rows, Interval.day)[0][1].people == 8
    assert rollup([], Interval.hour) == []


HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("counts", "rule", "expected"),
    [
        (Counts(40, 20, 20, 0), Rule(0.8, HOUR, 30), True),     # 50% < 80% with enough people
        (Counts(40, 36, 4, 0), Rule(0.8, HOUR, 30), False),     # 90% is fine
        (Counts(40, 32, 8, 0), Rule(0.8, HOUR, 30), False),     # exactly at threshold is not under it
        (Counts(20, 0, 20, 0), Rule(0.8, HOUR, 30), False),     # too few people to judge
        (Counts(40, 0, 0, 40), Rule(0.8, HOUR, 30), False),     # nobody's mask state seen
        (Counts(30, 1, 29, 0), Rule(0.5, HOUR, 30), True),      # min_people is inclusive
    ],
)
def test_breaches(counts: Counts, rule: Rule, expected: bool) -> None:
    assert breaches(counts, rule) is expected


@pytest.mark.parametrize(
    ("people", "k", "expected"),
    [
        (0, 5, False),   # an empty cell says nothing about anyone
        (1, 5, True),    # one person at a known door: a fact about that person
        (4, 5, True),
        (5, 5, False),   # k or more may be published
        (50, 5, False),
        (1, 1, False),   # k = 1: nothing is withheld
        (2, 3, True),
        (3, 3, False),
    ],
)
def test_small_cells_are_withheld(people: int, k: int, expected: bool) -> None:
    assert is_small_cell(people, k) is expected


# Cells are (camera, 15 minutes): a reader can ask for each camera and every 15 minutes, so what is
# published for coarser buckets or whole sites is summed from publishable cells only.
A, B = T, T + BASE


@pytest.mark.parametrize(
    ("cells", "interval", "expected"),
    [
        # One small cell alone: the bucket is suppressed, not shown as zero.
        ([(A, Counts(1, 0, 1, 0))], Interval.quarter, [(A, Counts(), True)]),
        # Two cameras in one quarter, one of them small: only the large one counts, flagged as partial.
        ([(A, Counts(9, 6, 3, 0)), (A, Counts(2, 1, 1, 0))], Interval.quarter, [(A, Counts(9, 6, 3, 0), True)]),
        # Small quarters never add up into an hour: 4 + 4 people in one hour is withheld too.
        ([(A, Counts(4, 4, 0, 0)), (B, Counts(4, 0, 4, 0))], Interval.hour, [(A, Counts(), True)]),
        ([(A, Counts(5, 4, 1, 0)), (B, Counts(4, 0, 4, 0))], Interval.hour, [(A, Counts(5, 4, 1, 0), True)]),
        ([(A, Counts(5, 4, 1, 0)), (B, Counts(6, 6, 0, 0))], Interval.hour, [(A, Counts(11, 10, 1, 0), False)]),
        ([], Interval.hour, []),
    ],
)
def test_publish_sums_only_publishable_cells(cells: list[tuple[datetime, Counts]], interval: Interval,
                                             expected: list[tuple[datetime, Counts, bool]]) -> None:
    got = publish(cells, interval, k=5)
    assert [(t, p.counts, p.withheld) for t, p in got] == expected
    assert all(p.suppressed == (p.withheld and p.counts.people == 0) for _, p in got)


def test_published_totals_cannot_be_differenced_into_a_small_cell() -> None:
    """Whatever windows, intervals or scopes a reader combines, a small cell is in none of the sums."""
    cells = [(A, Counts(7, 5, 2, 0)), (A, Counts(1, 0, 1, 0)), (B, Counts(6, 6, 0, 0)), (B, Counts(3, 0, 3, 0))]
    quarters = publish(cells, Interval.quarter, k=5)
    hours = publish(cells, Interval.hour, k=5)
    big_only = publish([c for c in cells if c[1].people >= 5], Interval.hour, k=5)
    assert published_total(p for _, p in hours).counts == published_total(p for _, p in quarters).counts
    assert [p.counts for _, p in hours] == [p.counts for _, p in big_only] == [Counts(13, 11, 2, 0)]
    assert published_total([]) is None
