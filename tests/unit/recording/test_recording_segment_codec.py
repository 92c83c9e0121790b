"""The segment path codec: pure, round-trips, rejects what it never produces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from civicam.domain.segments import (
    BadSegmentPath,
    parse_segment_path,
    partial_path,
    published_path,
    segment_path,
)

T = datetime(2026, 11, 22, 4, 35, 12, 250000, tzinfo=UTC)


def test_layout() -> None:
    assert segment_path(42, T) == "cam00000042/2026/11/22/04/20261122T043512.250000Z.mp4"
    assert partial_path(42, T) == segment_path(42, T) + ".partial"


@pytest.mark.parametrize("cam", [0, 1, 7, 99_999_999])
@pytest.mark.parametrize("start", [T, T.replace(microsecond=0), datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)])
def test_round_trip(cam: int, start: datetime) -> None:
    key = parse_segment_path(segment_path(cam, start))
    assert (key.camera_id, key.start, key.partial) == (cam, start, False)
    key = parse_segment_path(partial_path(cam, start))
    assert (key.camera_id, key.start, key.partial) == (cam, start, True)
    assert published_path(partial_path(cam, start)) == segment_path(cam, start)


def test_other_offsets_are_normalised_to_utc() -> None:
    local = T.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert segment_path(1, local) == segment_path(1, T)


def test_lexical_order_is_time_order() -> None:
    starts = [T + timedelta(seconds=s) for s in (0, 0.5, 4, 3599, 3600, 86400 * 40)]
    paths = [segment_path(3, s) for s in starts]
    assert paths == sorted(paths)


@pytest.mark.parametrize("bad", [
    "cam00000042/2026/11/22/04/20261122T043512.250000Z.mkv",
    "cam42/2026/11/22/04/20261122T043512.250000Z.mp4",
    "cam00000042/2026/11/22/05/20261122T043512.250000Z.mp4",  # folder disagrees with name
    "cam00000042/2026/11/22/04/20261122T043512.250000Z.fix.mp4.partial",
    "../etc/passwd",
    "",
])
def test_rejects(bad: str) -> None:
    with pytest.raises(BadSegmentPath):
        parse_segment_path(bad)


def test_naive_and_range_refused() -> None:
    with pytest.raises(ValueError):
        segment_path(1, datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        segment_path(-1, T)
    with pytest.raises(BadSegmentPath):
        published_path(segment_path(1, T))
