"""Index times against the wall clock: a simulated 100 ppm camera over a day stays within 0.5 s."""

from __future__ import annotations

import random
import struct

import pytest

from civicam.ingest.clock import MAX_SLEW, WallClock, ntp_seconds, parse_sender_report

RATE = 90000
DAY_S = 86400
GOP_S = 4.0  # one keyframe per default 4 s segment
T0 = 1_790_000_000.0


def _simulate(ppm: float, *, reports: bool = False, report_offset_s: float = 0.0,
              seed: int = 1) -> tuple[float, float, float]:
    """(worst |index time - true time| over a day, uncorrected drift at its end, worst segment stretch).

    The camera's tick clock runs ``ppm`` fast; each keyframe (every 4 s) arrives 20-300 ms after it was
    sampled (network and scheduling jitter, an occasional 2 s stall), and a sender report every 5 s
    carries the true time (plus ``report_offset_s``: a camera clock set wrong).
    """
    rng = random.Random(seed)
    scale = 1 + ppm * 1e-6
    first_delay = 0.05
    wc = WallClock(RATE, T0 + first_delay)
    worst = stretch = 0.0
    prev: tuple[int, float] | None = None
    t = 0.0
    while t <= DAY_S:
        ticks = round(t * RATE * scale)
        delay = 2.0 if rng.random() < 0.001 else rng.uniform(0.02, 0.3)
        wc.received(ticks, T0 + t + delay)
        if reports and int(t) % 5 == 0:
            wc.sender_report(ticks, T0 + t + report_offset_s)
        wc.steer(ticks)
        at = wc.at(ticks)
        worst = max(worst, abs(at - (T0 + t)))
        if prev is not None:
            # A segment from the previous keyframe to this one: its indexed length against its frames'.
            stretch = max(stretch, abs((at - prev[1]) - (ticks - prev[0]) / RATE))
        prev = (ticks, at)
        t += GOP_S
    uncorrected = abs((T0 + first_delay + round(DAY_S * RATE * scale) / RATE) - (T0 + DAY_S))
    return worst, uncorrected, stretch


@pytest.mark.parametrize("ppm", [100.0, -100.0])
def test_a_100ppm_camera_stays_within_half_a_second_over_a_day(ppm: float) -> None:
    worst, uncorrected, stretch = _simulate(ppm)
    print(f"{ppm:+.0f} ppm over a day: worst {worst:.3f}s (uncorrected {uncorrected:.2f}s)")
    assert uncorrected == pytest.approx(8.64, abs=0.1)  # the oracle: 100 ppm of 86,400 s, what we had
    assert worst < 0.5
    assert stretch <= MAX_SLEW * GOP_S * 1.001  # no segment is stretched by more than the slew bound


def test_sender_reports_steer_closer_and_a_wrong_camera_clock_is_ignored() -> None:
    with_reports, _, _ = _simulate(100.0, reports=True)
    assert with_reports < 0.15  # no delivery delay in a report: within the dead band of the truth
    wrong, _, _ = _simulate(100.0, reports=True, report_offset_s=3600.0)  # camera clock an hour off
    assert wrong < 0.5


def test_perfect_clock_is_left_alone() -> None:
    wc = WallClock(RATE, T0)
    for k in range(100):
        wc.received(k * 2 * RATE, T0 + k * 2 + 0.05)
        assert wc.steer(k * 2 * RATE) == 0.0
    assert wc.corrected_s == 0.0


def test_sender_report_parsing() -> None:
    sr = struct.pack(">BBHIIIIII", 0x80, 200, 6, 0x1234, 2208988800 + 100, 1 << 30, 777, 10, 20)
    rr = struct.pack(">BBHI", 0x80, 201, 1, 0x1234)  # a receiver report with no blocks, first
    assert parse_sender_report(rr + sr) == (777, 100.25)
    assert ntp_seconds(2208988800, 0) == 0.0
    for bad in (b"", b"\x80", sr[:20], b"\x00" * 28, rr):
        assert parse_sender_report(bad) is None
