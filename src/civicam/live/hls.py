"""HLS playlists over the recorded fMP4 segments: a sliding live window and a VOD range.

Each segment file is self-contained (ftyp+moov, then one moof+mdat per GOP). HLS serves the file's
header as the init section (``EXT-X-MAP``) and the rest as the media segment, so recording, playback,
export and HLS all read the same bytes and no second copy is written. Segments of one connection share
a timeline and an init section; a new connection (after a gap) is marked ``EXT-X-DISCONTINUITY`` with a
new map. Bytes are sliced by the ``init_bytes`` the index recorded.

The unblurred live view is low-latency HLS: the recorder appends a fragment every part target (~0.5 s),
and each fragment, of the segment in progress and of the last published ones, is listed as an
``EXT-X-PART`` byte range of its file, so a player can trail the camera by about three parts instead of
two segments. The blurred live view is low-latency too, over the blurred copies its pipeline writes
(live/blurred_live.py): ``file_playlist``, with the same discontinuity sequence and preload hint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from civicam.storage.fragments import FragmentIndex
from civicam.storage.models import Segment

MIME_PLAYLIST = "application/vnd.apple.mpegurl"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _segment_lines(segments: Sequence[Segment], durations: Sequence[float], q: str, map_each: bool,
                   parts: Mapping[int, PartList] | None = None) -> list[str]:
    """Discontinuity, map, date, the parts (if listed) and the EXTINF+URI of each segment."""
    lines: list[str] = []
    prev: Segment | None = None
    for seg, dur in zip(segments, durations, strict=True):
        new_session = prev is None or seg.session != prev.session or seg.session == "recovered"
        if new_session or map_each:
            if prev is not None and new_session:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="segments/{seg.id}/init.mp4{q}"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(seg.start)}")
        if parts and seg.seq in parts:
            lines += _part_lines(parts[seg.seq], q)
        lines.append(f"#EXTINF:{dur:.3f},")
        lines.append(f"segments/{seg.id}/media.m4s{q}")
        prev = seg
    return lines


def _durations(segments: Sequence[Segment]) -> list[float]:
    return [max(0.001, (s.end - s.start).total_seconds()) for s in segments]


def _target(target_s: float, durations: Sequence[float]) -> int:
    return max([math.ceil(target_s), *(math.ceil(d) for d in durations)])


def _discontinuity_line(discontinuity_sequence: int) -> list[str]:
    """RFC 8216 §4.3.3.3 / §6.2.2: required once a discontinuity has scrolled out of a live window."""
    return [f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}"] if discontinuity_sequence > 0 else []


def media_playlist(segments: Sequence[Segment], *, live: bool, query: str = "", target_s: float = 4.0,
                   map_each: bool = False, discontinuity_sequence: int = 0) -> str:
    """A media playlist; segment URIs are relative (``segments/<id>/...``) with ``query`` appended.

    ``map_each`` gives every segment its own init section: blurred segments are each encoded on their own.
    ``discontinuity_sequence`` (live only) is the number of discontinuities before the first segment listed.
    """
    q = f"?{query}" if query else ""
    durations = _durations(segments)
    target = _target(target_s, durations)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if live:
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{segments[0].seq if segments else 0}")
        lines += _discontinuity_line(discontinuity_sequence)
        # Start playback near the live edge: one target duration back rather than the default three.
        lines.append(f"#EXT-X-START:TIME-OFFSET=-{target},PRECISE=NO")
    else:
        lines += ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-MEDIA-SEQUENCE:0"]
    lines += _segment_lines(segments, durations, q, map_each)
    if not live:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


# -- low-latency live (LL-HLS, RFC 8216bis §4.4.4.9, §6.2.5.2) ---------------------------------------------


@dataclass(frozen=True)
class Part:
    """One fragment of a segment file, listed as an ``EXT-X-PART`` by byte range."""

    offset: int
    length: int
    duration_s: float
    independent: bool


@dataclass(frozen=True)
class PartList:
    """The parts of one segment, all byte ranges of one file URI (relative, without the query)."""

    uri: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class InProgress:
    """The segment being written: listed by its parts only, under media sequence number ``seq``."""

    seq: int
    start: datetime
    init_length: int
    parts: PartList
    new_session: bool  # it does not continue the newest published segment's timeline and init section


def parts_of(index: FragmentIndex, uri: str) -> PartList:
    """The parts of a scanned segment file served at ``uri``."""
    return PartList(uri, tuple(Part(f.offset, f.length, index.seconds(f.duration), f.independent)
                               for f in index.fragments))


def _part_lines(parts: PartList, q: str) -> list[str]:
    return [f'#EXT-X-PART:DURATION={p.duration_s:.3f},URI="{parts.uri}{q}",BYTERANGE="{p.length}@{p.offset}"'
            + (",INDEPENDENT=YES" if p.independent else "") for p in parts.parts]


def part_target(setting_s: float, lists: Iterable[PartList]) -> float:
    """The PART-TARGET to announce: the longest listed part, or the setting while none is listed.

    The spec forbids parts longer than PART-TARGET and wants all but a segment's last within 85% of it.
    The recorder cuts each GOP into equal parts of at most the setting (5 x 0.4 s for a 2 s GOP at 25 fps),
    so announcing the setting (0.5 s) would make them too short; a recorder that writes one fragment per
    GOP (older files) is covered too.
    """
    longest = max((p.duration_s for pl in lists for p in pl.parts), default=0.0)
    return math.ceil((longest or setting_s) * 1000) / 1000


def low_latency_playlist(segments: Sequence[Segment], parts: Mapping[int, PartList], edge: InProgress | None, *,
                         query: str, target_s: float, part_target_s: float, discontinuity_sequence: int = 0) -> str:
    """A live playlist with parts: published ``segments`` (parts listed for the seqs in ``parts``), then
    the parts of the segment in progress, which a player can play before the segment is finished, and a
    preload hint for its next part (the bytes after the last one listed, RFC 8216bis §4.4.5.3).

    >>> print(low_latency_playlist([], {}, None, query="", target_s=4, part_target_s=0.5), end="")
    #EXTM3U
    #EXT-X-VERSION:9
    #EXT-X-TARGETDURATION:4
    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
    #EXT-X-PART-INF:PART-TARGET=0.500
    #EXT-X-MEDIA-SEQUENCE:0
    #EXT-X-INDEPENDENT-SEGMENTS
    """
    q = f"?{query}" if query else ""
    durations = _durations(segments)
    target = _target(target_s, durations)
    # No EXT-X-START: a low-latency player starts PART-HOLD-BACK from the live edge, about three parts.
    lines = ["#EXTM3U", "#EXT-X-VERSION:9", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * part_target_s:.3f}",
             f"#EXT-X-PART-INF:PART-TARGET={part_target_s:.3f}",
             f"#EXT-X-MEDIA-SEQUENCE:{segments[0].seq if segments else edge.seq if edge else 0}",
             *_discontinuity_line(discontinuity_sequence), "#EXT-X-INDEPENDENT-SEGMENTS"]
    lines += _segment_lines(segments, durations, q, False, parts)
    if edge is not None and edge.parts.parts:
        if edge.new_session or not segments:
            if segments:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="{edge.parts.uri}{q}",BYTERANGE="{edge.init_length}@0"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(edge.start)}")
        lines += _part_lines(edge.parts, q)
    hint = preload_hint(edge, q)
    if hint:
        lines.append(hint)
    return "\n".join(lines) + "\n"


def preload_hint(edge: InProgress | None, q: str = "") -> str | None:
    """The ``EXT-X-PRELOAD-HINT`` for the part after the last listed one of the segment in progress.

    The next part continues the same file, so it is hinted as a byte range open at its end. Without a
    segment in progress the next file's name is not known yet, and nothing is hinted.

    >>> edge = InProgress(3, datetime(2026, 1, 1, tzinfo=UTC), 800, PartList("parts/x.mp4", (
    ...     Part(800, 1000, 0.4, True), Part(1800, 900, 0.4, False))), False)
    >>> preload_hint(edge, "?grant=g")
    '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="parts/x.mp4?grant=g",BYTERANGE-START=2700'
    """
    if edge is None or not edge.parts.parts:
        return None  # an edge without parts is not listed either (no map for its file yet)
    last = edge.parts.parts[-1]
    start = last.offset + last.length
    return f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{edge.parts.uri}{q}",BYTERANGE-START={start}'


class ListedFile(Protocol):
    """A segment file the blurred live pipeline wrote (live/blurred_live.py ``BlurredFile``)."""

    @property
    def seq(self) -> int: ...
    @property
    def start(self) -> datetime: ...
    @property
    def name(self) -> str: ...
    @property
    def new_session(self) -> bool: ...
    @property
    def init_length(self) -> int: ...
    @property
    def parts(self) -> Sequence[Part]: ...
    @property
    def complete(self) -> bool: ...


def _listed(files: Sequence[ListedFile]) -> list[ListedFile]:
    """The files a playlist lists: up to the first one not complete (those after it would be out of order)."""
    listed: list[ListedFile] = []
    for f in files:
        listed.append(f)
        if not f.complete:
            break
    return listed


def file_playlist(files: Sequence[ListedFile], *, prefix: str, target_s: float, part_target_s: float,
                  parted: int = 2, discontinuity_sequence: int = 0) -> str:
    """A low-latency live playlist over files that hold a whole segment each (init section, then its
    parts): the blurred live view's copies. A complete file is a segment (a byte range after its init
    section), listed with its parts if it is one of the last ``parted``; the file being written by its
    parts only, then a preload hint for its next part, as ``low_latency_playlist`` does. Files after one
    that is not complete are not listed (they would be out of order). ``discontinuity_sequence`` is the
    number of discontinuities before the first file listed (``carry_discontinuities``).

    >>> f = type("F", (), dict(seq=3, start=datetime(2026, 1, 1, tzinfo=UTC), name="a.mp4", new_session=True,
    ...          init_length=600, parts=[Part(600, 900, 0.4, True)], complete=False))()
    >>> print(file_playlist([f], prefix="b/", target_s=4, part_target_s=0.4), end="")
    #EXTM3U
    #EXT-X-VERSION:9
    #EXT-X-TARGETDURATION:4
    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.200
    #EXT-X-PART-INF:PART-TARGET=0.400
    #EXT-X-MEDIA-SEQUENCE:3
    #EXT-X-INDEPENDENT-SEGMENTS
    #EXT-X-MAP:URI="b/a.mp4",BYTERANGE="600@0"
    #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
    #EXT-X-PART:DURATION=0.400,URI="b/a.mp4",BYTERANGE="900@600",INDEPENDENT=YES
    #EXT-X-PRELOAD-HINT:TYPE=PART,URI="b/a.mp4",BYTERANGE-START=1500
    """
    listed = _listed(files)
    durations = [max(0.001, sum(p.duration_s for p in f.parts)) for f in listed if f.complete]
    target = _target(target_s, durations)
    lines = ["#EXTM3U", "#EXT-X-VERSION:9", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * part_target_s:.3f}",
             f"#EXT-X-PART-INF:PART-TARGET={part_target_s:.3f}",
             f"#EXT-X-MEDIA-SEQUENCE:{listed[0].seq if listed else 0}",
             *_discontinuity_line(discontinuity_sequence), "#EXT-X-INDEPENDENT-SEGMENTS"]
    done = [f for f in listed if f.complete]
    with_parts = {id(f) for f in done[-parted:]} if parted > 0 else set()
    for k, f in enumerate(listed):
        uri = prefix + f.name
        if k == 0 or f.new_session:
            if k > 0:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="{uri}",BYTERANGE="{f.init_length}@0"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(f.start)}")
        if not f.complete or id(f) in with_parts or k == len(listed) - 1:
            lines += _part_lines(PartList(uri, tuple(f.parts)), "")
        # The newest file stays listed by its parts only until the next one has a part, even once complete:
        # hls.js (1.x) reads a playlist that ends on a segment URI as if that segment were still the one in
        # progress, and then lays the next segment's parts over it (four seconds back: the player stalled at
        # every segment boundary). A recorder's playlist never ends there (the next file's parts come first).
        if f.complete and f.parts and k < len(listed) - 1:
            end = f.parts[-1].offset + f.parts[-1].length
            lines += [f"#EXTINF:{sum(p.duration_s for p in f.parts):.3f},",
                      f"#EXT-X-BYTERANGE:{end - f.init_length}@{f.init_length}", uri]
    last = listed[-1] if listed else None
    if last is not None and not last.complete:
        hint = preload_hint(InProgress(last.seq, last.start, last.init_length,
                                       PartList(prefix + last.name, tuple(last.parts)), last.new_session))
        if hint:
            lines.append(hint)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Carried:
    """A blurred live playlist's discontinuity count as last served, to carry forward to the next one."""

    first_seq: int  # the first file listed
    count: int  # discontinuities before it: its EXT-X-DISCONTINUITY-SEQUENCE
    ahead: frozenset[int]  # seqs of the files after it that start a new timeline (their tag is listed)


def carry_discontinuities(prev: Carried | None, files: Sequence[ListedFile]) -> Carried:
    """The discontinuity count of ``file_playlist(files)``, carried forward from the last one served.

    The pipeline keeps only its last few files, so a discontinuity that scrolled out is known only from
    an earlier playlist (RFC 8216 §6.2.2: the count must then grow by one); like ``DiscontinuityCounter``
    for the recorded segments, the count is kept per camera and carried over the files seen since. The
    pipeline's own timeline breaks (a reconnection, a segment skipped to catch up) and a new pipeline's
    first file (after a restart) count, since each restarts the player's timeline. One missed altogether
    (it came and scrolled out between two fetches of anyone) was seen by no player, so none is misled.

    >>> f = lambda seq, new: type("F", (), dict(seq=seq, new_session=new, complete=True))()
    >>> first = carry_discontinuities(None, [f(3, True), f(4, False), f(5, True)])
    >>> first.count, carry_discontinuities(first, [f(5, True), f(6, False)]).count
    (0, 1)
    """
    listed = _listed(files)
    if not listed:
        return prev or Carried(0, 0, frozenset())
    first = listed[0].seq
    ahead = {f.seq for f in listed[1:] if f.new_session}
    if prev is None or first < prev.first_seq:
        return Carried(first, 0, frozenset(ahead))  # the first playlist served (or a count started afresh)
    known = prev.ahead | ahead | ({first} if listed[0].new_session and first > prev.first_seq else set())
    passed = sum(1 for d in known if prev.first_seq < d <= first)
    return Carried(first, prev.count + passed, frozenset(d for d in known if d > first))


def reload_too_far(last_seq: int, msn: int) -> bool:
    """A blocking reload for a segment more than two past the newest published one is refused (400)."""
    return msn > last_seq + 2


def reload_ready(last_seq: int, part_counts: Mapping[int, int], msn: int, part: int | None) -> bool:
    """Whether a playlist now answers a blocking reload for segment ``msn`` (part ``part``, if given).

    ``last_seq`` is the newest published segment (-1 if none); ``part_counts`` the number of complete
    parts per listed segment, the one in progress included. A part index past the last part of a finished
    segment asks for the first part of the next one (RFC 8216bis §6.2.5.2).

    >>> reload_ready(7, {7: 8, 8: 2}, 8, 1), reload_ready(7, {7: 8, 8: 2}, 8, 2)
    (True, False)
    >>> reload_ready(7, {7: 8, 8: 0}, 7, 8), reload_ready(7, {7: 8, 8: 1}, 7, 8)
    (False, True)
    """
    if part is None or msn < last_seq:
        return msn <= last_seq
    if msn == last_seq:
        if part < part_counts.get(msn, part + 1):
            return True
        return part_counts.get(msn + 1, 0) >= 1
    return msn == last_seq + 1 and part_counts.get(msn, 0) > part


def master_playlist(media_uri: str, *, bandwidth: int, width: int, height: int, blurred: bool) -> str:
    """A one-variant master playlist; fetching it is the audited "view start"."""
    res = f",RESOLUTION={width}x{height}" if width and height else ""
    return (
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        # Tells clients (and tests) whether what they get is blurred; the transform seam decides it.
        f'#EXT-X-SESSION-DATA:DATA-ID="org.civicam.blurred",VALUE="{"true" if blurred else "false"}"\n'
        f'#EXT-X-STREAM-INF:BANDWIDTH={max(1, bandwidth)}{res}\n'
        f"{media_uri}\n"
    )


def bandwidth_of(segments: Sequence[Segment]) -> int:
    """Peak bits per second over the given segments, for EXT-X-STREAM-INF."""
    peak = 0
    for s in segments:
        dur = (s.end - s.start).total_seconds()
        if dur > 0:
            peak = max(peak, int(s.bytes * 8 / dur))
    return peak or 2_000_000
