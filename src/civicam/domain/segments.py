"""Pure codec between (camera id, UTC start) and a segment's relative path; no I/O.

Layout: ``cam00000042/2026/11/22/04/20261122T043512.250000Z.mp4``. One folder per camera and hour keeps
directories small, the name alone gives the start so the disk can be re-indexed without the database,
and lexical order equals time order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

SEGMENT_SUFFIX = ".mp4"
PARTIAL_SUFFIX = ".partial"
_NAME = re.compile(
    r"^cam(?P<cam>\d{8})/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
    r"(?P<stamp>\d{8}T\d{6}\.\d{6})Z\.mp4(?P<partial>\.partial)?$"
)


class BadSegmentPath(ValueError):
    """The path is not one the codec produces."""


@dataclass(frozen=True)
class SegmentKey:
    """What a segment path encodes."""

    camera_id: int
    start: datetime
    partial: bool = False


@dataclass(frozen=True)
class SegmentDone:
    """A segment just published: what the index records about it (both engines and start-up repair make it)."""

    camera_id: int
    path: str
    start: datetime
    end: datetime
    bytes: int
    frames: int
    keyframes: int
    init_bytes: int
    codec: str
    width: int
    height: int
    session: str


def camera_prefix(camera_id: int) -> str:
    """The folder holding every segment of one camera."""
    if camera_id < 0 or camera_id > 99_999_999:
        raise ValueError(f"camera id out of range: {camera_id}")
    return f"cam{camera_id:08d}"


def segment_path(camera_id: int, start: datetime) -> str:
    """The relative path of the published segment of ``camera_id`` starting at ``start``."""
    if start.tzinfo is None:
        raise ValueError("naive datetimes are refused; pass an aware UTC datetime")
    t = start.astimezone(UTC)
    return f"{camera_prefix(camera_id)}/{t:%Y/%m/%d/%H}/{t:%Y%m%dT%H%M%S.%f}Z{SEGMENT_SUFFIX}"


def partial_path(camera_id: int, start: datetime) -> str:
    """The temporary name a segment is written under before it is published by rename."""
    return segment_path(camera_id, start) + PARTIAL_SUFFIX


def parse_segment_path(path: str) -> SegmentKey:
    """The camera and start encoded in ``path`` (published or partial).

    >>> parse_segment_path("cam00000007/2026/01/02/03/20260102T030405.000006Z.mp4").camera_id
    7
    """
    m = _NAME.match(path.replace("\\", "/"))
    if not m:
        raise BadSegmentPath(f"not a segment path: {path!r}")
    start = datetime.strptime(m["stamp"], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    key = SegmentKey(int(m["cam"]), start, m["partial"] is not None)
    # The folders must agree with the name, or two paths could decode to one key.
    if (m["y"], m["m"], m["d"], m["h"]) != (f"{start:%Y}", f"{start:%m}", f"{start:%d}", f"{start:%H}"):
        raise BadSegmentPath(f"folders disagree with the file name: {path!r}")
    return key


def published_path(partial: str) -> str:
    """The published name of a partial segment path."""
    if not partial.endswith(PARTIAL_SUFFIX):
        raise BadSegmentPath(f"not a partial segment path: {partial!r}")
    return partial[: -len(PARTIAL_SUFFIX)]
