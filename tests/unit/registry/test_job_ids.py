"""Probe job ids: what another API process needs, signed; anything altered or signed otherwise is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from civicam.registry import job_ids as probe_jobs
from civicam.registry.job_ids import JobRef

KEY = b"k" * 32
REF = JobRef(42, 7, datetime(2026, 12, 1, 12, 0, 0, 123_000, tzinfo=UTC))


def test_round_trip() -> None:
    assert probe_jobs.parse(KEY, probe_jobs.job_id(KEY, REF)) == REF


@pytest.mark.parametrize("mutate", [
    lambda s: s.replace("42.", "43.", 1),  # another camera
    lambda s: s.replace(".7.", ".8.", 1),  # another user
    lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),  # a forged signature
    lambda s: s + ".1",
    lambda s: "",
    lambda s: "x." + s,
    lambda s: "9" * 120,
])
def test_altered_ids_are_refused(mutate: Callable[[str], str]) -> None:
    assert probe_jobs.parse(KEY, mutate(probe_jobs.job_id(KEY, REF))) is None


def test_another_hub_key_is_refused() -> None:
    assert probe_jobs.parse(b"other" * 8, probe_jobs.job_id(KEY, REF)) is None


@pytest.mark.parametrize(("after_s", "lost"), [(0, False), (5 + 24 + 60, False), (5 + 24 + 61, True)])
def test_lost_after_every_step_timed_out(after_s: float, lost: bool) -> None:
    assert probe_jobs.lost(REF.started, REF.started + timedelta(seconds=after_s), 5, 8) is lost
