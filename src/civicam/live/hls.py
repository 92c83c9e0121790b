"""HLS playlists over the recorded fMP4 segments: a sliding live window and a VOD range.

Each segment file is self-contained (ftyp+moov, then one moof+mdat per GOP). HLS serves the file's
header as the init section (``EXT-X-MAP``) and the rest as the media segment, so recording, playback,
export and HLS all read the same bytes and no second copy is written. Segments of one connection share
a timeline and an init section; a new connection (after a gap) is marked ``EXT-X-DISCONTINUITY`` with a
new map. Bytes are sliced by the ``init_bytes`` the index recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from civicam.storage.models import Segment

MIME_PLAYLIST = "application/vnd.apple.mpegurl"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def media_playlist(segments: Sequence[Segment], *, live: bool, query: str = "", target_s: float = 4.0,
                   map_each: bool = False) -> str:
    """A media playlist; segment URIs are relative (``segments/<id>/...``) with ``query`` appended.

    ``map_each`` gives every segment its own init section: blurred segments are each encoded on their own.
    """
    q = f"?{query}" if query else ""
    durations = [max(0.001, (s.end - s.start).total_seconds()) for s in segments]
    target = max([math.ceil(target_s), *(math.ceil(d) for d in durations)])
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if live:
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{segments[0].seq if segments else 0}")
        # Start playback near the live edge: one target duration back rather than the default three.
        lines.append(f"#EXT-X-START:TIME-OFFSET=-{target},PRECISE=NO")
    else:
        lines += ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-MEDIA-SEQUENCE:0"]
    prev: Segment | None = None
    for seg, dur in zip(segments, durations, strict=True):
        new_session = prev is None or seg.session != prev.session or seg.session == "recovered"
        if new_session or map_each:
            if prev is not None and new_session:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="segments/{seg.id}/init.mp4{q}"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(seg.start)}")
        lines.append(f"#EXTINF:{dur:.3f},")
        lines.append(f"segments/{seg.id}/media.m4s{q}")
        prev = seg
    if not live:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


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
