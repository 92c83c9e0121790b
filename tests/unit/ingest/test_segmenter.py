"""The segment-cutting rules both engines share: a table of unit sequences and the steps they give."""

from __future__ import annotations

import pytest

from civicam.ingest.segmenter import Segmenter

# (ticks, key, stopping) per unit -> the letters of the steps: S start, F finish, W write, X stop, - skip.
CASES = [
    ("cut on the first keyframe at the target", [(0, 1, 0), (40, 0, 0), (80, 1, 0), (120, 0, 0), (160, 1, 0)],
     ["SW", "W", "W", "W", "FSW"]),
    ("half a frame of slack for an early keyframe", [(0, 1, 0), (37, 0, 0), (74, 0, 0), (111, 0, 0), (148, 1, 0)],
     ["SW", "W", "W", "W", "FSW"]),
    ("but not a whole frame", [(0, 1, 0), (40, 0, 0), (80, 0, 0), (120, 0, 0), (130, 1, 0)],
     ["SW", "W", "W", "W", "W"]),
    ("stop on a keyframe", [(0, 1, 0), (40, 0, 1), (80, 1, 1)], ["SW", "W", "X"]),
    ("stop after four targets without a keyframe", [(0, 1, 0), (200, 0, 1), (600, 0, 1), (641, 0, 1)],
     ["SW", "W", "W", "X"]),
    ("time going back is held", [(0, 1, 0), (40, 0, 0), (20, 0, 0), (160, 1, 0)], ["SW", "W", "W", "FSW"]),
]


def _letters(step: object) -> str:
    s = step
    out = ("X" if s.stop else "") + ("F" if s.finish else "") + ("S" if s.start else "")  # type: ignore[attr-defined]
    out += "W" if s.write else ""  # type: ignore[attr-defined]
    return out or "-"


@pytest.mark.parametrize(("units", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_steps(units: list[tuple[int, int, int]], expected: list[str]) -> None:
    seg = Segmenter(target_ticks=150, frame_ticks=40)
    got = []
    for ticks, key, stopping in units:
        step = seg.step(ticks, bool(key), bool(stopping))
        if step.start:
            seg.started(step.ticks)
        got.append(_letters(step))
    assert got == expected


def test_clamped_ticks_and_a_failed_open_skip_until_a_keyframe() -> None:
    seg = Segmenter(target_ticks=150, frame_ticks=40)
    first = seg.step(0, True, False)
    assert first.start  # the engine could not open it (disk full): no started() call
    assert not seg.step(40, False, False).write
    assert seg.step(80, True, False).start
    seg.started(80)
    assert seg.step(60, False, False).ticks == 80  # never before the previous unit
    seg.dropped()  # disk full mid-segment
    assert not seg.step(120, False, False).write
    again = seg.step(160, True, False)
    assert again.start and not again.finish and again.write


def test_reorder_passthrough_and_growth() -> None:
    from civicam.ingest.reorder import Reorder

    r: Reorder[str] = Reorder(0)
    assert r.passthrough(0) and r.passthrough(3600)
    assert not r.passthrough(1800)  # out of order: take the reordering path, which grows the depth
    assert r.push(1800, "b") == [] and r.depth == 1 and r.grown == 1  # now held one unit back
    assert not r.passthrough(7200)
    assert r.drain() == [(3600, 1800, "b")]  # decode time never goes back: clamped, presented earlier
