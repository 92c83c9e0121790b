"""Unblurred grants: signed, expiring, and bound to one kind of view and one interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civicam.live import grants

KEY = b"k" * 32
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW = T0.timestamp()


def _read(grant: str, user: int = 7, cam: int = 3, now: float = NOW) -> grants.Grant | None:
    return grants.read(KEY, grant, user, cam, now)


def test_a_grant_reads_back_its_scope_and_only_for_its_user_and_camera() -> None:
    g = grants.issue(KEY, 7, 3, "playback", T0, T0 + timedelta(minutes=10), now=NOW)
    found = _read(g)
    assert found is not None and found.kind == "playback"
    assert found.start == T0 and found.end == T0 + timedelta(minutes=10)
    assert _read(g, user=8) is None and _read(g, cam=4) is None
    assert _read(g, now=NOW + grants.GRANT_TTL_S + 1) is None  # expired


@pytest.mark.parametrize("tamper", [
    lambda g: g.replace(".playback.", ".live."),
    lambda g: ".".join([*g.split(".")[:3], str(int(g.split(".")[3]) - 86_400_000), *g.split(".")[4:]]),
    lambda g: ".".join([*g.split(".")[:4], str(int(g.split(".")[4]) + 86_400_000), *g.split(".")[5:]]),
    lambda g: g[:-2] + "AA",
    lambda g: "7.3.x",
    lambda g: "7.3.playback.a.b.c.d",
])
def test_a_tampered_grant_is_worthless(tamper: object) -> None:
    g = grants.issue(KEY, 7, 3, "playback", T0, T0 + timedelta(minutes=10), now=NOW)
    assert _read(tamper(g)) is None  # type: ignore[operator]


@pytest.mark.parametrize(("kind", "start_min", "end_min", "whole", "covered"), [
    ("playback", 2, 4, False, True),  # a segment inside the interval
    ("playback", -1, 1, False, True),  # a segment the interval starts in
    ("playback", 9, 12, False, True),  # ... and ends in
    ("playback", -30, -1, False, False),  # before: the past needs its own grant
    ("playback", 11, 20, False, False),  # after
    ("live", 2, 4, False, False),  # another kind of view
    ("playback", 0, 10, True, True),  # the playlist of exactly the interval
    ("playback", -1, 10, True, False),  # a wider playlist
])
def test_covers(kind: str, start_min: int, end_min: int, whole: bool, covered: bool) -> None:
    g = grants.Grant(7, 3, "playback", T0, T0 + timedelta(minutes=10), NOW + 60)
    at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
    assert g.covers(kind, at(start_min), at(end_min), whole) is covered
