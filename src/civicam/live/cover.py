"""Where to blur between two face detections: the motion hull of each face, and faces the detector lost.

Pure geometry on xyxy boxes in frame pixels, no video. ``FaceBlur`` (live/privacy.py) detects every few
frames; these functions say which regions cover every face on every frame in between, including a face
the detector stops finding while it is still in view (leaving through the frame's edge, half of it out;
small and missed twice), which is carried on along its last motion for a few intervals.

Only boxes and their motion, for one stream, forgotten within a second: nothing here tells one person from
another or follows anyone beyond the blur's own few frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from civicam.analytics.blur import pad_boxes

Boxes = npt.NDArray[np.float32]

# Each blurred region reaches this share of the face's size beyond the box on every side.
PADDING = 0.5
# Two boxes in consecutive detections are one moving face when their centres are at most this many face
# widths apart (a walker crossing the frame moves ~2 widths in 0.2 s) and their sizes within 2x.
MOVE_WIDTHS = 4.0
# A face no longer found is still blurred along its last motion for this many detection intervals after
# the one in which it was lost (0.6 s more at 5 detections a second): long enough for a walker's face to
# leave the frame once half of it is out (bench/privacy.py: that, and small faces missed twice, were most
# of what was left recognisable).
HOLD_INTERVALS = 3
# The carried region of a moving face grows by this share of the face's size per interval it has been
# lost: its speed was measured over one interval and may change.
DRIFT = 0.25
DRIFT_SIZE = 96.0
# A lost box that touched the frame's edge held only the part of a face still in view (a 150 px face was
# boxed 46x65 px as it left): it is padded by this instead of PADDING.
CUT_PADDING = 1.0
# A face counts as found again (or as still found) only this many face widths from where its motion puts
# it: the 4 widths of MOVE_WIDTHS, meant for pairing boxes without a prediction, paired a face leaving the
# frame with another face 3.99 widths away, and the leaving face went unblurred (bench/privacy.py).
REFOUND_WIDTHS = 1.5


def padded(boxes: Boxes, padding: float = PADDING) -> Boxes:
    return pad_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), padding)


def match(before: Boxes, after: Boxes, reach: float | npt.NDArray[np.float32] = MOVE_WIDTHS) -> list[tuple[int, int]]:
    """Pairs (i, j): ``before[i]`` and ``after[j]`` are one face that moved (centres at most ``reach`` face
    widths apart, one figure or one per ``before`` box; sizes within 2x), nearest first, each box in one
    pair at most."""
    if not len(before) or not len(after):
        return []
    cb, ca = (before[:, :2] + before[:, 2:]) / 2, (after[:, :2] + after[:, 2:]) / 2
    wb, wa = before[:, 2] - before[:, 0], after[:, 2] - after[:, 0]
    dist = np.linalg.norm(cb[:, None] - ca[None], axis=2) / np.maximum(np.maximum(wb[:, None], wa[None]), 1.0)
    ratio = np.maximum(wb[:, None], wa[None]) / np.maximum(np.minimum(wb[:, None], wa[None]), 1.0)
    cost = np.where((dist <= np.reshape(reach, (-1, 1))) & (ratio <= 2.0), dist, np.inf)
    pairs: list[tuple[int, int]] = []
    used_b, used_a = np.zeros(len(before), bool), np.zeros(len(after), bool)
    for flat in np.argsort(cost, axis=None):
        i, j = (int(v) for v in np.unravel_index(flat, cost.shape))
        if not np.isfinite(cost[i, j]):
            break
        if used_b[i] or used_a[j]:
            continue
        used_b[i] = used_a[j] = True
        pairs.append((i, j))
    return pairs


def inside_share(boxes: Boxes, regions: Boxes) -> npt.NDArray[np.float32]:
    """For each box, the largest share of its area inside any one of ``regions`` (0 with no regions)."""
    b, r = boxes.reshape(-1, 4), regions.reshape(-1, 4)
    if not len(b) or not len(r):
        return np.zeros(len(b), np.float32)
    iw = np.clip(np.minimum(b[:, None, 2], r[None, :, 2]) - np.maximum(b[:, None, 0], r[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(b[:, None, 3], r[None, :, 3]) - np.maximum(b[:, None, 1], r[None, :, 1]), 0, None)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-6)
    return np.asarray((iw * ih).max(axis=1) / area, np.float32)


def _hull(a: Boxes, b: Boxes) -> Boxes:
    return np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], axis=1)


def motion_cover(before: Boxes, after: Boxes, pairs: list[tuple[int, int]] | None = None) -> Boxes:
    """Regions (xyxy, padded) that cover every face between two detections ``before`` and ``after``.

    A face found in both is covered by the hull of its two padded boxes (every position on the way, for
    motion without sharp turns within 0.2 s); a face in only one (arriving, leaving, or missed once) by its
    own padded box, carried over the whole interval. ``pairs``: ``match(before, after)`` if already made.
    """
    before, after = before.reshape(-1, 4), after.reshape(-1, 4)
    pairs = match(before, after) if pairs is None else pairs
    pb, pa = padded(before), padded(after)
    used_b, used_a = np.zeros(len(before), bool), np.zeros(len(after), bool)
    regions = [_hull(pb[[i]], pa[[j]]) for i, j in pairs]
    for i, j in pairs:
        used_b[i] = used_a[j] = True
    regions += [pb[~used_b], pa[~used_a]]
    return np.asarray(np.concatenate(regions), np.float32).reshape(-1, 4)


@dataclass(frozen=True)
class Lost:
    """A face the last detection did not find: where it was last seen, its motion per detection interval
    then (zero when it was seen only once), and how many intervals ago."""

    box: Boxes  # (4,)
    velocity: Boxes  # (4,): the same shift for both corners
    age: int
    cut: bool = False  # the box touched the frame's edge: it held only the part of the face in view


def velocities(before: Boxes, after: Boxes, pairs: list[tuple[int, int]]) -> Boxes:
    """Each ``after`` box's motion since ``before`` (zero for a face not in ``before``), per interval, from
    their ``match`` pairs."""
    v = np.zeros((len(after), 4), np.float32)
    for i, j in pairs:
        c = (after[j, :2] + after[j, 2:]) / 2 - (before[i, :2] + before[i, 2:]) / 2
        v[j] = np.concatenate([c, c])
    return v


def lost_cover(lost: list[Lost]) -> Boxes:
    """Regions covering each lost face over the coming interval: the hull of where it was last seen and
    where its last motion puts it at the interval's end, padded, and grown by ``DRIFT`` for every interval
    it has been lost. From the last box on, not from where the motion put it at the interval's start: a
    face leaving the frame is boxed smaller and smaller, and the motion measured from those boxes is not
    the face's (bench/privacy.py, tests/integration/test_blur_edges.py)."""
    if not lost:
        return np.zeros((0, 4), np.float32)
    out = []
    for f in lost:
        end = f.box + f.velocity * (f.age + 1)
        # Grown as for a face of at most DRIFT_SIZE px: small faces are the ones lost most, and one large
        # false detection must not blur most of the frame.
        size = float(max(f.box[2] - f.box[0], f.box[3] - f.box[1], 1.0))
        drift = DRIFT * min(1.0, DRIFT_SIZE / size) * (f.age + 1)
        pad = (CUT_PADDING if f.cut else PADDING) + drift
        out.append(_hull(padded(f.box, pad), padded(end, pad)))
    return np.asarray(np.concatenate(out), np.float32)


def _still_found(last: Boxes, last_velocity: Boxes, found: Boxes) -> set[int]:
    """Indices of ``last`` that ``found`` holds near where their motion puts them; for a face seen only once
    (no motion yet), anywhere a face could have walked to (MOVE_WIDTHS), or every fast walker first seen
    would count as lost and be blurred twice over for the hold."""
    velocity = last_velocity.reshape(-1, 4)
    moved = last.reshape(-1, 4) + velocity
    reach = np.where(velocity.any(axis=1), REFOUND_WIDTHS, MOVE_WIDTHS).astype(np.float32)
    return {i for i, _ in match(moved, found.reshape(-1, 4), reach)}


def carry(lost: list[Lost], newly: list[Lost], found: Boxes) -> list[Lost]:
    """The lost faces after a detection that found ``found``: the ones lost before, an interval older, and
    ``newly`` (the previous detection's faces it did not find) join; those it found again (near where their
    motion puts them) and those lost for ``HOLD_INTERVALS`` leave."""
    aged = [Lost(f.box, f.velocity, f.age + 1, f.cut) for f in [*lost, *newly]]
    if not aged:
        return []
    predicted = np.stack([f.box + f.velocity * f.age for f in aged])
    back = {i for i, _ in match(predicted, found.reshape(-1, 4), REFOUND_WIDTHS)}
    return [f for i, f in enumerate(aged) if i not in back and f.age <= HOLD_INTERVALS]


class Coverage:
    """The regions to blur, detection after detection, for one stream: feed each detection's boxes to
    ``step`` and blur the frames since the previous detection with what it returns."""

    def __init__(self) -> None:
        self.last = np.zeros((0, 4), np.float32)  # boxes of the last detection
        self._velocity = np.zeros((0, 4), np.float32)  # their motion since the one before
        self._cut = np.zeros(0, bool)  # which of them touched the frame's edge
        self._lost: list[Lost] = []

    def step(self, found: Boxes, frame: tuple[int, int] | None = None) -> Boxes:
        """``found``: this detection's boxes; ``frame``: the frame's (width, height), to tell boxes cut by
        its edge."""
        found = np.asarray(found, np.float32).reshape(-1, 4)
        pairs = match(self.last, found)
        seen = _still_found(self.last, self._velocity, found)
        newly = [Lost(self.last[i], self._velocity[i], 0, bool(self._cut[i]))
                 for i in range(len(self.last)) if i not in seen]
        # The frames since the last detection: the motion hulls, the faces lost before and their motion,
        # and that of the last detection's faces not found now (their first interval lost).
        regions = np.concatenate([motion_cover(self.last, found, pairs), lost_cover(self._lost), lost_cover(newly)])
        self._lost = carry(self._lost, newly, found)
        self._velocity = velocities(self.last, found, pairs)
        self.last = found
        if frame is None:
            self._cut = np.zeros(len(found), bool)
        else:
            w, h = frame
            self._cut = (found[:, 0] <= 1) | (found[:, 1] <= 1) | (found[:, 2] >= w - 1) | (found[:, 3] >= h - 1)
        return regions

    def pending(self) -> Boxes:
        """Where the lost faces are going next: for frames after the last detection at a stream's end."""
        return lost_cover(self._lost)


def backward_cover(detections: list[Boxes], frame: tuple[int, int] | None = None) -> Boxes:
    """Regions for the interval between ``detections[0]`` and ``detections[1]`` from the detections after
    it, run backwards in time: a face found only later (found late as it walked in, or small and missed at
    a segment's start) is carried back along its motion as a lost face is carried forward. For whoever
    can wait for those later detections (a segment blurred whole for playback or export)."""
    if len(detections) < 2:
        return np.zeros((0, 4), np.float32)
    cover = Coverage()
    for found in reversed(detections[1:]):
        cover.step(found, frame)
    return cover.step(detections[0], frame)
