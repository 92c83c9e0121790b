"""Per-camera, in-memory face tracks and the per-track vote that yields one anonymous event per person.

The tracker is a compact ByteTrack (Zhang et al. 2022) in numpy: constant-velocity prediction, first
association of high-score detections by IoU, second association of low-score detections to the tracks
left over, new tracks only from high-score detections, tracks removed after ``max_age_s`` unseen.
(supervision 0.31 moved its ByteTrack into the separate ``trackers`` package, which requires the
non-headless opencv-python; this keeps the dependency set unchanged.) A track holds a box, a velocity
and the running sum of mask probabilities — no image, no embedding — and is dropped when it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from civicam.analytics.detections import Detections
from civicam.analytics.mask import CLASSES, UNKNOWN, MaskResult

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PersonEvent:
    """One person seen by one camera: when (seconds from stream start), label, vote confidence."""

    time_s: float
    label: str
    confidence: float
    observations: int


@dataclass
class _Track:
    box: FloatArray
    velocity: FloatArray
    last_t: float
    first_t: float
    hits: int = 1
    prob_sum: FloatArray = field(default_factory=lambda: np.zeros(2, np.float32))
    votes: int = 0

    def predicted(self, t: float) -> FloatArray:
        return np.asarray(self.box + self.velocity * (t - self.last_t), np.float32)


def _iou(a: FloatArray, b: FloatArray) -> FloatArray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (aa[:, None] + ab[None, :] - inter + 1e-9), np.float32)


# The largest change of face height between two analysed frames that can still be the same face.
MAX_SIZE_RATIO = 1.4

def _greedy(score: FloatArray, thr: float) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    if score.size == 0:
        return pairs
    s = score.copy()
    while True:
        i, j = np.unravel_index(int(np.argmax(s)), s.shape)
        if s[i, j] < thr:
            return pairs
        pairs.append((int(i), int(j)))
        s[i, :] = -1
        s[:, j] = -1


class FaceTracker:
    """Tracks faces of ONE camera in memory and votes each track's mask label over its frames."""

    # min_hits 4: a person counts once seen in 4 analysed frames (0.6 s at 5 fps; crossing an entrance
    # takes longer). At 2, fragments of 2-3 frames where a crossing face's track split counted as people:
    # 12 counted of 10 in the demo's entrance clip, 10 at 4 (docs/model-card-faces.md).
    def __init__(self, high_score: float = 0.6, low_score: float = 0.3, match_iou: float = 0.2,
                 max_age_s: float = 1.5, min_hits: int = 4, vote_threshold: float = 0.6) -> None:
        self.high_score, self.low_score, self.match_iou = high_score, low_score, match_iou
        self.max_age_s, self.min_hits, self.vote_threshold = max_age_s, min_hits, vote_threshold
        self._tracks: list[_Track] = []

    @property
    def active(self) -> int:
        return len(self._tracks)

    def _similarity(self, preds: FloatArray, boxes: FloatArray, gates: FloatArray,
                    last: FloatArray | None = None) -> FloatArray:
        # IoU, plus a centre-distance term so small fast faces at 5 fps still associate: at walking
        # speed a face moves more than its own width between analysed frames. ``gates`` is the largest
        # distance (in face heights) per track: wide for new tracks (velocity unknown), narrower after.
        sim = _iou(preds, boxes)
        if sim.size:
            pc = (preds[:, None, :2] + preds[:, None, 2:]) / 2
            bc = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
            size = np.maximum(preds[:, None, 3] - preds[:, None, 1], 1.0)
            dist = np.linalg.norm(pc - bc, axis=2) / size
            hb = boxes[None, :, 3] - boxes[None, :, 1]
            # sizes compare with the last box seen, not the prediction: a jittery box must not grow it
            seen = size if last is None else np.maximum(last[:, None, 3] - last[:, None, 1], 1.0)
            ratio = np.maximum(hb / seen, seen / np.maximum(hb, 1.0))
            g = gates[:, None]
            near = np.where((dist < g) & (ratio < MAX_SIZE_RATIO), self.match_iou * (1.0 - 0.5 * dist / g), 0.0)
            # Overlap alone is no match either when the size jumps: one person leaving at a door and
            # another arriving there overlap, but faces do not change height by 40 % in 0.2 s.
            sim = np.maximum(np.where(ratio < MAX_SIZE_RATIO, sim, 0.0), near).astype(np.float32)
        return sim

    def _associate(self, t: float, tracks: list[int], boxes: FloatArray) -> list[tuple[int, int]]:
        if not tracks or len(boxes) == 0:
            return []
        preds = np.stack([self._tracks[k].predicted(t) for k in tracks])
        gates = np.array([3.0 if self._tracks[k].hits == 1 else 1.5 for k in tracks], np.float32)
        last = np.stack([self._tracks[k].box for k in tracks])
        sim = self._similarity(preds, boxes, gates, last)
        return [(tracks[i], j) for i, j in _greedy(sim, self.match_iou * 0.4)]

    def update(self, t: float, faces: Detections, results: Sequence[MaskResult]) -> list[PersonEvent]:
        """Feed one analysed frame at time ``t`` (seconds). Returns events of tracks that ended."""
        high = np.nonzero(faces.scores >= self.high_score)[0]
        low = np.nonzero((faces.scores >= self.low_score) & (faces.scores < self.high_score))[0]
        all_tracks = list(range(len(self._tracks)))
        first = self._associate(t, all_tracks, faces.boxes[high])
        matched = [(k, int(high[j])) for k, j in first]
        used_tracks = {k for k, _ in first}
        rest = [k for k in all_tracks if k not in used_tracks]
        matched += [(k, int(low[j])) for k, j in self._associate(t, rest, faces.boxes[low])]
        used_dets = {d for _, d in matched}
        for k, d in matched:
            tr = self._tracks[k]
            dt = max(t - tr.last_t, 1e-3)
            new_v = (faces.boxes[d] - tr.box) / dt
            tr.velocity = np.asarray(0.5 * tr.velocity + 0.5 * new_v, np.float32)
            tr.box, tr.last_t, tr.hits = faces.boxes[d].copy(), t, tr.hits + 1
            self._vote(tr, results[d])
        for hd in high:
            if int(hd) not in used_dets:
                tr = _Track(faces.boxes[hd].copy(), np.zeros(4, np.float32), t, t)
                self._vote(tr, results[int(hd)])
                self._tracks.append(tr)
        ended = [tr for tr in self._tracks if t - tr.last_t > self.max_age_s]
        self._tracks = [tr for tr in self._tracks if t - tr.last_t <= self.max_age_s]
        return [e for e in (self._event(tr) for tr in ended) if e is not None]

    def flush(self) -> list[PersonEvent]:
        """End every track (stream over) and return their events."""
        events = [e for e in (self._event(tr) for tr in self._tracks) if e is not None]
        self._tracks = []
        return events

    @staticmethod
    def _vote(tr: _Track, r: MaskResult) -> None:
        if r.probs != (0.0, 0.0):
            tr.prob_sum += np.asarray(r.probs, np.float32)
            tr.votes += 1

    def _event(self, tr: _Track) -> PersonEvent | None:
        if tr.hits < self.min_hits:
            return None
        if tr.votes == 0:
            return PersonEvent(tr.first_t, UNKNOWN, 0.0, tr.hits)
        mean = tr.prob_sum / tr.votes
        top = int(np.argmax(mean))
        conf = float(mean[top])
        label = CLASSES[top] if conf >= self.vote_threshold else UNKNOWN
        return PersonEvent(tr.first_t, label, conf, tr.hits)
