"""Pure aggregate arithmetic: buckets, compliance, roll-ups and the alert decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civicam.domain.compliance import BASE, Counts, Interval, Rule, breaches, bucket_start, rollup

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
