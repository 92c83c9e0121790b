"""Wall-clock times for stream ticks, kept in step with the wall clock over a long recording (pure).

A camera's RTP clock is its own crystal: 100 ppm fast is 8.6 s a day, which matters for evidence. Index
times start from the receive time of the first keyframe and then follow the stream's ticks (so segment
bounds do not jitter with delivery), and are pulled back towards the wall clock by a bounded slew:

- the offset to correct is the lower envelope of (receive time - mapped time) over a window, since
  network and scheduling delays only ever make a unit arrive late; or, when the camera sends RTCP sender
  reports and their NTP time agrees with the receive clock to within ``SR_SANE_S``, the report's time
  (no delivery delay at all); a camera whose own clock is plainly wrong is ignored;
- corrections are applied only beyond a dead band and at most ``max_slew`` seconds per second of
  stream, so a segment's length never differs from its frames' duration by more than that fraction,
  and the end of one segment is always the start of the next (both are mapped with the same state).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

DEAD_BAND_S = 0.1
MAX_SLEW = 500e-6  # 0.5 ms per second: five times the 100 ppm of a poor crystal
WINDOW_S = 30.0  # lower envelope of delivery delays over this much stream time
SR_SANE_S = 2.0  # a sender report this far from the receive clock is a camera clock set wrong: ignored
SR_FRESH_S = 60.0  # a sender report older than this (stream time) no longer steers


@dataclass
class _Sample:
    ticks: int
    error: float  # seconds: (reference time) - (mapped time)


class WallClock:
    """Stream ticks (since the session's first keyframe) to wall-clock seconds since the epoch.

    >>> wc = WallClock(90000, 1000.0)
    >>> wc.at(90000)
    1001.0
    """

    def __init__(self, rate: int, start_s: float, *, max_slew: float = MAX_SLEW, dead_band_s: float = DEAD_BAND_S,
                 window_s: float = WINDOW_S) -> None:
        if rate <= 0:
            raise ValueError("the clock rate must be positive")
        self.rate, self.max_slew, self.dead_band_s = rate, max_slew, dead_band_s
        self.window_ticks = int(window_s * rate)
        self._base_s = start_s  # wall time of tick 0 under the current correction
        self._received: deque[_Sample] = deque()
        self._report: _Sample | None = None
        self._last_ticks = 0  # where the last correction was applied: slew is bounded per tick since
        self.corrected_s = 0.0  # total correction applied (a figure for health and tests)

    def at(self, ticks: int) -> float:
        """The wall time of ``ticks`` under the current correction."""
        return self._base_s + ticks / self.rate

    def received(self, ticks: int, wall_s: float) -> None:
        """A unit stamped ``ticks`` was received at ``wall_s`` (the receive clock)."""
        self._received.append(_Sample(ticks, wall_s - self.at(ticks)))
        while self._received and self._received[0].ticks < ticks - self.window_ticks:
            self._received.popleft()

    def sender_report(self, ticks: int, ntp_s: float) -> None:
        """An RTCP sender report: the camera says ``ticks`` was sampled at ``ntp_s`` (its wall clock)."""
        error = ntp_s - self.at(ticks)
        envelope = self._envelope()
        if envelope is not None and abs(error - envelope) > SR_SANE_S:
            return  # the camera's clock is set wrong: trusting it would drag every index time with it
        self._report = _Sample(ticks, error)

    def _envelope(self) -> float | None:
        return min((s.error for s in self._received), default=None)

    def steer(self, ticks: int) -> float:
        """Apply the correction due at ``ticks`` (call it where a segment may be cut); returns it in seconds."""
        report = self._report
        if report is not None and ticks - report.ticks <= SR_FRESH_S * self.rate:
            error: float | None = report.error
        else:
            error = self._envelope()
        span = max(0, ticks - self._last_ticks) / self.rate
        self._last_ticks = max(self._last_ticks, ticks)
        if error is None or abs(error) <= self.dead_band_s:
            return 0.0
        bound = self.max_slew * span
        step = max(-bound, min(bound, error))
        self._base_s += step
        self.corrected_s += step
        # What was measured against the old mapping is now that much nearer.
        for sample in self._received:
            sample.error -= step
        if self._report is not None:
            self._report.error -= step
        return step

    def shift(self, seconds: float) -> None:
        """Move the whole mapping by ``seconds`` (a handover continuing another recorder's time for a keyframe).

        >>> wc = WallClock(90000, 1000.0); wc.shift(0.25); wc.at(0)
        1000.25
        """
        self._base_s += seconds
        for sample in self._received:
            sample.error -= seconds
        if self._report is not None:
            self._report.error -= seconds


def ntp_seconds(msw: int, lsw: int) -> float:
    """NTP timestamp (RFC 5905: seconds since 1900 and a 32-bit fraction) as Unix seconds.

    >>> ntp_seconds(2208988800 + 10, 1 << 31)
    10.5
    """
    return msw - 2208988800 + lsw / (1 << 32)


def parse_sender_report(packet: bytes) -> tuple[int, float] | None:
    """(RTP timestamp, NTP time in Unix seconds) of the first RTCP sender report in a compound packet.

    Total: anything that is not a well-formed SR gives None.
    """
    pos = 0
    while pos + 4 <= len(packet):
        b0, pt = packet[pos], packet[pos + 1]
        length = 4 * (((packet[pos + 2] << 8) | packet[pos + 3]) + 1)
        if b0 >> 6 != 2 or pos + length > len(packet):
            return None
        if pt == 200 and length >= 28:
            msw = int.from_bytes(packet[pos + 8:pos + 12], "big")
            lsw = int.from_bytes(packet[pos + 12:pos + 16], "big")
            rtp = int.from_bytes(packet[pos + 16:pos + 20], "big")
            return rtp, ntp_seconds(msw, lsw)
        pos += length
    return None
