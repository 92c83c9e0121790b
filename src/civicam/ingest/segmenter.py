"""Where segments are cut: one pure state machine that both recording engines feed, unit by unit.

Both engines (PyAV muxing FFmpeg's packets, the native engine writing its own fragments) used to keep a
hand-mirrored copy of these rules; now each asks ``Segmenter.step`` what to do with an access unit and
does only the I/O. The rules:

- decode times never go backwards (a camera's clock stepping back must not break a muxer's timeline);
- a segment starts on a keyframe and is cut at the first keyframe at or after the target length, with
  half a frame of slack, so a keyframe stamped a hair early (an encoder's jitter) does not stretch the
  segment by a whole GOP;
- units before the first segment opens (or while opening fails: disk full) are skipped;
- stopping ends the session on the next keyframe, so the last segment is whole GOPs, or after four
  targets without one, so a camera that sends no keyframes cannot hold shutdown hostage.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """What to do with one access unit, in this order: stop, finish, start, write."""

    ticks: int  # its decode time, never before the previous unit's
    stop: bool = False  # end the session now; this unit is not written
    finish: bool = False  # publish the segment in progress, ending at ``ticks``
    start: bool = False  # open a new segment at ``ticks`` (call ``started`` if it opened)
    write: bool = False  # the unit goes into the (new) segment


class Segmenter:
    """The cutting rules for one session, in the track's ticks.

    >>> s = Segmenter(target_ticks=100, frame_ticks=10)
    >>> s.step(0, True, False)
    Step(ticks=0, stop=False, finish=False, start=True, write=True)
    >>> s.started(0); s.step(10, False, False).write, s.step(96, True, False).finish
    (True, True)
    """

    def __init__(self, target_ticks: int, frame_ticks: int) -> None:
        self.target_ticks = target_ticks
        self.frame_ticks = frame_ticks  # until two units tell the real frame interval
        self.recording = False  # a segment is open
        self.seg_start = 0
        self.last = 0  # the latest decode time seen
        self._seen = False

    def step(self, ticks: int, key: bool, stopping: bool) -> Step:
        if ticks < self.last:
            ticks = self.last
        if self._seen and ticks > self.last:
            self.frame_ticks = ticks - self.last
        self._seen = True
        self.last = ticks
        if key:
            if stopping:
                return Step(ticks, stop=True)
            finish = self.recording and ticks - self.seg_start >= self.target_ticks - self.frame_ticks // 2
            if finish:
                self.recording = False
            return Step(ticks, finish=finish, start=not self.recording, write=True)
        if not self.recording:
            return Step(ticks)
        if stopping and ticks - self.seg_start > 4 * self.target_ticks:
            return Step(ticks, stop=True)
        return Step(ticks, write=True)

    def started(self, ticks: int) -> None:
        """The engine opened the segment that ``step`` asked for."""
        self.recording = True
        self.seg_start = ticks

    def dropped(self) -> None:
        """The engine gave up the segment in progress (disk full): skip units until a keyframe opens one."""
        self.recording = False
