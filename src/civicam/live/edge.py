"""The live edge of a camera for low-latency HLS: the newest published segments, the parts (fragments) of
the last few, and the segment being written, found by name (it starts where the newest one ended, or, after
a reconnection, is the newest partial file in the camera's folders).

This is the unblurred view's edge: its parts are the recorder's own bytes. The blurred view's parts are
made by a per-camera pipeline that follows this same edge fragment by fragment, blurs and re-encodes each
fragment as it is written (live/blurred_live.py), and lists only what it has blurred.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from civicam.context import Context
from civicam.domain.segments import (
    PARTIAL_SUFFIX,
    BadSegmentPath,
    parse_segment_path,
    partial_path,
    published_path,
    segment_path,
)
from civicam.live import hls
from civicam.storage.backend import SegmentStore
from civicam.storage.fragments import scan_fd
from civicam.storage.index import latest_detached
from civicam.storage.models import Segment

PARTED_SEGMENTS = 2  # published segments listed with parts: with the one in progress, ~3 target durations
_PART_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z\.mp4$")


def part_uri(rel: str) -> str:
    """The playlist URI (relative to the live playlist) of the file ``rel``, in progress or published.

    Named by the published file name, so the URI of a part stays valid when its segment is published.
    """
    name = rel.rsplit("/", 1)[-1]
    return "parts/" + name.removesuffix(PARTIAL_SUFFIX)


def published_rel(camera_id: int, name: str) -> str | None:
    """The published path of the segment file ``name`` (as in ``part_uri``) of a camera; None if malformed."""
    if not _PART_NAME.match(name):
        return None
    try:
        rel = segment_path(camera_id, datetime.strptime(name, "%Y%m%dT%H%M%S.%fZ.mp4").replace(tzinfo=UTC))
    except ValueError:
        return None
    return rel if rel.endswith("/" + name) else None


@contextmanager
def open_segment_file(store: SegmentStore, rel: str) -> Iterator[tuple[BinaryIO, bool] | None]:
    """The segment file ``rel`` (published name) open for reading, and whether it is still being written.

    The partial is tried first: once open it stays readable through the rename that publishes it, and if
    it is gone it has been published (same bytes) or deleted.
    """
    for candidate, growing in ((rel + PARTIAL_SUFFIX, True), (rel, False)):
        try:
            fh = open(store.local_path(candidate), "rb")  # noqa: SIM115  closed below
        except FileNotFoundError:
            continue
        with fh:
            yield fh, growing
            return
    yield None


@dataclass
class LiveState:
    """One look at a camera's live edge, as the low-latency playlist lists it."""

    segments: list[Segment]
    parts: dict[int, hls.PartList] = field(default_factory=dict)
    edge: hls.InProgress | None = None
    watch: str | None = None  # the file in progress: when it grows or is renamed, look again
    watch_size: int = 0
    transient: bool = False  # a segment is published but not indexed yet: look again very soon

    @property
    def last_seq(self) -> int:
        return self.segments[-1].seq if self.segments else -1

    def part_counts(self) -> dict[int, int]:
        counts = {seq: len(pl.parts) for seq, pl in self.parts.items()}
        if self.edge is not None:
            counts[self.edge.seq] = len(self.edge.parts.parts)
        return counts

    def changed(self) -> bool:
        """Whether the file in progress grew or went away since this look (a stat, no database)."""
        if self.watch is None:
            return False
        try:
            return os.stat(self.watch).st_size != self.watch_size
        except FileNotFoundError:
            return True


def _new_session_partial(store: SegmentStore, camera_id: int, after: datetime, now: datetime) -> str | None:
    """The newest partial of the camera starting after ``after``: a new connection's first segment."""
    best: tuple[datetime, str] | None = None
    folders = {segment_path(camera_id, t).rsplit("/", 1)[0] for t in (after, now - timedelta(hours=1), now)}
    for folder in folders:
        try:
            names = [e.name for e in os.scandir(store.local_path(folder)) if e.name.endswith(PARTIAL_SUFFIX)]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            try:
                key = parse_segment_path(f"{folder}/{name}")
            except BadSegmentPath:
                continue
            if key.camera_id == camera_id and key.start > after and (best is None or key.start > best[0]):
                best = (key.start, f"{folder}/{name}")
    return best[1] if best else None


def _exists(store: SegmentStore, rel: str) -> bool:
    # local_path of an object store's segment may download it, or say FileNotFoundError when it is gone.
    try:
        return os.path.exists(store.local_path(rel))
    except FileNotFoundError:
        return False


def add_edge(store: SegmentStore, camera_id: int, last: Segment, state: LiveState, now: datetime) -> None:
    """Find the segment in progress after ``last`` and list its complete fragments in ``state``."""
    expected = partial_path(camera_id, last.end)  # a segment ends where the next one of its session starts
    new_session = False
    if not _exists(store, expected) and not _exists(store, published_path(expected)):
        found = _new_session_partial(store, camera_id, last.end, now)
        if found is None:
            return
        expected, new_session = found, True
    rel = published_path(expected)
    with open_segment_file(store, rel) as opened:
        if opened is None:
            return
        fh, growing = opened
        index = scan_fd(fh.fileno())
    if growing:
        state.watch, state.watch_size = store.local_path(expected), index.size
    else:
        state.transient = not new_session
    start = parse_segment_path(rel).start
    state.edge = hls.InProgress(last.seq + 1, start, index.init_length, hls.parts_of(index, part_uri(rel)),
                                new_session)


def live_state(ctx: Context, store: SegmentStore, camera_id: int, count: int,
               now: datetime | None = None) -> LiveState:
    """The newest ``count`` published segments, the parts of the last few, and the segment in progress.

    Blocking; a short database session of its own (call it from a worker thread in async endpoints).
    """
    segments = latest_detached(ctx.db, camera_id, count)
    state = LiveState(segments)
    for seg in segments[-PARTED_SEGMENTS:]:
        try:
            with open(store.local_path(seg.path), "rb") as fh:
                state.parts[seg.seq] = hls.parts_of(scan_fd(fh.fileno()), part_uri(seg.path))
        except FileNotFoundError:
            continue  # deleted by retention meanwhile
    if segments:
        add_edge(store, camera_id, segments[-1], state, now or datetime.now(UTC))
    return state
