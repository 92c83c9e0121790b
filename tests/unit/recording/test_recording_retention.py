"""Retention as a pure decision: parametrised tables of ages, rules, holds and quota."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from civicam.domain.retention import (
    AgeRule,
    HoldSpan,
    Place,
    SegmentRef,
    Space,
    bytes_to_free,
    decide,
    max_age_for,
)
from civicam.ingest.supervisor import backoff_delay

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def seg(i: int, cam: int, age_h: float, size: int = 100, dur_s: float = 4) -> SegmentRef:
    start = NOW - timedelta(hours=age_h)
    return SegmentRef(i, cam, start, start + timedelta(seconds=dur_s), size)


PLACES = {1: Place(site_id=10, region_id=100), 2: Place(site_id=20, region_id=100), 3: Place(site_id=30, region_id=300)}


@pytest.mark.parametrize(("camera", "rules", "expected"), [
    (1, [], 30 * DAY),
    (1, [AgeRule("region", 100, 7 * DAY)], 7 * DAY),
    (1, [AgeRule("region", 100, 7 * DAY), AgeRule("site", 10, 3 * DAY)], 3 * DAY),
    (1, [AgeRule("region", 100, 7 * DAY), AgeRule("site", 10, 3 * DAY), AgeRule("camera", 1, DAY)], DAY),
    (2, [AgeRule("site", 10, 3 * DAY)], 30 * DAY),  # another site's rule does not apply
    (3, [AgeRule("camera", 3, 90 * DAY)], 90 * DAY),  # a rule may also lengthen retention
])
def test_most_specific_rule_wins(camera: int, rules: list[AgeRule], expected: timedelta) -> None:
    assert max_age_for(camera, PLACES[camera], rules, 30 * DAY) == expected


@pytest.mark.parametrize(("segments", "rules", "holds", "space", "deleted", "short"), [
    # nothing old, no quota: nothing goes
    ([seg(1, 1, 1), seg(2, 1, 2)], [], [], Space(200), {}, False),
    # older than the default 30 days goes, for age
    ([seg(1, 1, 24 * 31), seg(2, 1, 2)], [], [], Space(200), {1: "age"}, False),
    # a camera rule of one day
    ([seg(1, 1, 25), seg(2, 2, 25)], [AgeRule("camera", 1, DAY)], [], Space(200), {1: "age"}, False),
    # an expired but held segment stays
    ([seg(1, 1, 24 * 31)], [], [HoldSpan(1, NOW - 40 * DAY, NOW)], Space(100), {}, False),
    # a hold on another camera does not protect it
    ([seg(1, 1, 24 * 31)], [], [HoldSpan(2, NOW - 40 * DAY, NOW)], Space(100), {1: "age"}, False),
    # under the high watermark: no quota deletion
    ([seg(1, 1, 3), seg(2, 1, 2), seg(3, 1, 1)], [], [], Space(300, quota=1000), {}, False),
    # above high (900 of 1000): oldest first down to the low watermark (800)
    ([seg(i, 1, 10 - i) for i in range(10)], [], [], Space(950, quota=1000, high=0.9, low=0.8),
     {0: "quota", 1: "quota"}, False),
    # oldest held: the next oldest go instead
    ([seg(i, 1, 10 - i) for i in range(10)], [], [HoldSpan(1, NOW - timedelta(hours=11), NOW - timedelta(hours=8.5))],
     Space(950, quota=1000), {2: "quota", 3: "quota"}, False),
    # age deletions count towards the quota
    ([seg(0, 1, 24 * 40, 200), *[seg(i, 1, 10 - i) for i in range(1, 8)]], [], [], Space(950, quota=1000),
     {0: "age"}, False),
    # everything held: nothing deleted, still short
    ([seg(1, 1, 2), seg(2, 1, 1)], [], [HoldSpan(1, NOW - DAY, NOW)], Space(1000, quota=1000), {}, True),
    # free disk below reserve with no quota: oldest go
    ([seg(1, 1, 3, 500), seg(2, 1, 2, 500), seg(3, 1, 1, 500)], [], [],
     Space(1500, free=100, min_free=1000), {1: "quota", 2: "quota"}, False),
])
def test_decide(segments: list[SegmentRef], rules: list[AgeRule], holds: list[HoldSpan], space: Space,
                deleted: dict[int, str], short: bool) -> None:
    decision = decide(segments, now=NOW, places=PLACES, rules=rules, default_max_age=30 * DAY, holds=holds,
                      space=space)
    assert decision.delete == deleted
    assert decision.still_short is short
    assert decision.bytes_freed == sum(s.bytes for s in segments if s.id in deleted)


@pytest.mark.parametrize(("space", "need"), [
    (Space(0), 0),
    (Space(900, quota=1000, high=0.9, low=0.5), 0),
    (Space(901, quota=1000, high=0.9, low=0.5), 401),
    (Space(10, free=50, min_free=100), 60),
])
def test_bytes_to_free(space: Space, need: int) -> None:
    assert bytes_to_free(space) == need


def test_decision_is_deterministic_under_shuffling() -> None:
    segments = [seg(i, 1 + i % 3, 100 - i, 10) for i in range(50)]
    base = decide(segments, now=NOW, places=PLACES, rules=[], default_max_age=DAY, holds=[],
                  space=Space(500, quota=500))
    shuffled = segments[:]
    random.Random(1).shuffle(shuffled)
    again = decide(shuffled, now=NOW, places=PLACES, rules=[], default_max_age=DAY, holds=[],
                   space=Space(500, quota=500))
    assert base.delete == again.delete


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_is_bounded_and_grows(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(50)]
    cap = min(30.0, 0.5 * 2**attempt)
    assert all(cap / 2 <= d <= cap for d in delays)
    assert len(set(delays)) > 1  # jittered
