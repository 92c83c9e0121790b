"""Playback checked frame by frame: what the hub's export of a window shows, against the clip the server loops.

The RTSP test server loops a pre-encoded clip byte for byte (support/rtsp.py ``file`` mounts), and the
recorder remuxes without re-encoding, so every recorded frame decodes to one of the clip's pictures. A
window of recording that neither skips nor repeats video shows the clip's pictures in order (cyclically):
an independent oracle for gaps and overlaps, whatever the index says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import av

from civicam.live.export import export_clip
from civicam.storage.backend import SegmentStore
from civicam.storage.models import Segment


def digest(frame: av.VideoFrame) -> str:
    return hashlib.sha256(frame.to_ndarray(format="gray").tobytes()).hexdigest()


def frame_digests(path: Path) -> list[str]:
    """Every decoded picture of a clip, hashed, in order."""
    with av.open(str(path)) as inp:
        return [digest(f) for f in inp.decode(video=0)]


def played_frames(store: SegmentStore, rows: Sequence[Segment], start: datetime, end: datetime,
                  tmp: Path) -> list[tuple[datetime, str]]:
    """What playback gives for [start, end): the hub's own export of the window, each frame's time and picture."""
    picked = [r for r in rows if r.end > start and r.start < end]
    result = export_clip(store, picked, start, end, str(tmp))
    out = []
    with av.open(str(tmp)) as inp:
        stream = inp.streams.video[0]
        for frame in inp.decode(stream):
            at = result.first_frame + timedelta(seconds=float((frame.pts or 0) * stream.time_base))
            out.append((at, digest(frame)))
    return out


def first_break(played: Sequence[str], clip: Sequence[str]) -> int | None:
    """Index of the first played picture that does not follow the clip's order (None: all do)."""
    if not played:
        return None
    if played[0] not in clip:
        return 0
    first = clip.index(played[0])
    for i, d in enumerate(played):
        if d != clip[(first + i) % len(clip)]:
            return i
    return None
