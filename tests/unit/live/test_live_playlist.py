"""Low-latency live playlists, blocking-reload decisions, byte ranges and part URIs: pure tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civicam.domain.segments import partial_path, segment_path
from civicam.live import hls
from civicam.live.edge import part_uri, published_rel
from civicam.live.ranges import Unsatisfiable, byte_range
from civicam.storage.models import Segment

T0 = datetime(2026, 11, 22, 4, 35, 12, 250000, tzinfo=UTC)
Q = "?grant=g"


def _seg(seq: int, start: float, dur: float = 4.0, session: str = "a") -> Segment:
    s = T0 + timedelta(seconds=start)
    return Segment(id=100 + seq, camera_id=7, seq=seq, start=s, end=s + timedelta(seconds=dur),
                   path=segment_path(7, s), bytes=1000, init_bytes=800, session=session)


def _parts(start: float, n: int, dur: float = 0.5) -> hls.PartList:
    # Fragments of 1000 bytes after an 800-byte init section; a keyframe every 2 s (4 parts).
    return hls.PartList(part_uri(segment_path(7, T0 + timedelta(seconds=start))),
                        tuple(hls.Part(800 + 1000 * i, 1000, dur, i % 4 == 0) for i in range(n)))


def test_low_latency_playlist_lists_parts_of_the_last_segments_and_the_one_in_progress() -> None:
    segs = [_seg(10, 0), _seg(11, 4), _seg(12, 8)]
    edge = hls.InProgress(13, T0 + timedelta(seconds=12), 800, _parts(12, 3), new_session=False)
    text = hls.low_latency_playlist(segs, {11: _parts(4, 8), 12: _parts(8, 8)}, edge, query="grant=g",
                                    target_s=4.0, part_target_s=0.5)
    lines = text.splitlines()
    assert lines[:7] == ["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-TARGETDURATION:4",
                         "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
                         "#EXT-X-PART-INF:PART-TARGET=0.500", "#EXT-X-MEDIA-SEQUENCE:10",
                         "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert lines[7:12] == ['#EXT-X-MAP:URI="segments/110/init.mp4?grant=g"',
                           "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:35:12.250Z", "#EXTINF:4.000,",
                           "segments/110/media.m4s?grant=g", "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:35:16.250Z"]
    assert lines[12:14] == [
        '#EXT-X-PART:DURATION=0.500,URI="parts/20261122T043516.250000Z.mp4?grant=g",BYTERANGE="1000@800",'
        "INDEPENDENT=YES",
        '#EXT-X-PART:DURATION=0.500,URI="parts/20261122T043516.250000Z.mp4?grant=g",BYTERANGE="1000@1800"']
    assert text.count("#EXT-X-PART:") == 8 + 8 + 3 and text.count("#EXTINF") == 3
    # The segment in progress: no map (same session), its date, its parts, no URI line yet, and a hint.
    assert lines[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="parts/20261122T043524.250000Z.mp4?grant=g",' \
        "BYTERANGE-START=3800"
    lines = lines[:-1]
    assert lines[-4:] == [
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:35:24.250Z",
        '#EXT-X-PART:DURATION=0.500,URI="parts/20261122T043524.250000Z.mp4?grant=g",BYTERANGE="1000@800",'
        "INDEPENDENT=YES",
        '#EXT-X-PART:DURATION=0.500,URI="parts/20261122T043524.250000Z.mp4?grant=g",BYTERANGE="1000@1800"',
        '#EXT-X-PART:DURATION=0.500,URI="parts/20261122T043524.250000Z.mp4?grant=g",BYTERANGE="1000@2800"']
    assert "#EXT-X-ENDLIST" not in text and "#EXT-X-START" not in text
    assert lines.index("segments/112/media.m4s?grant=g") < lines.index(lines[-4])


@pytest.mark.parametrize(("sessions", "edge_new", "expected"), [
    # A new connection in progress: a discontinuity and the init section of its own file, by byte range.
    (["a", "a"], True, ["#EXT-X-DISCONTINUITY",
                        '#EXT-X-MAP:URI="parts/20261122T043520.250000Z.mp4?grant=g",BYTERANGE="800@0"']),
    # Published segments of two connections keep their discontinuity; the edge continues the second.
    (["a", "b"], False, ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="segments/111/init.mp4?grant=g"']),
    # A recovered segment never shares a timeline, even with another recovered one.
    (["recovered", "recovered"], False, ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="segments/111/init.mp4?grant=g"']),
])
def test_discontinuities(sessions: list[str], edge_new: bool, expected: list[str]) -> None:
    segs = [_seg(10, 0, session=sessions[0]), _seg(11, 4, session=sessions[1])]
    edge = hls.InProgress(12, T0 + timedelta(seconds=8), 800, _parts(8, 1), new_session=edge_new)
    lines = hls.low_latency_playlist(segs, {}, edge, query="grant=g", target_s=4.0,
                                     part_target_s=0.5).splitlines()
    assert lines.count("#EXT-X-DISCONTINUITY") == 1
    at = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[at:at + 2] == expected


def test_an_edge_without_parts_is_not_listed_and_the_sequence_starts_at_the_first_segment() -> None:
    edge = hls.InProgress(11, T0 + timedelta(seconds=4), 800, _parts(4, 0), new_session=False)
    text = hls.low_latency_playlist([_seg(10, 0)], {}, edge, query="grant=g", target_s=2.0, part_target_s=0.5)
    assert "#EXT-X-MEDIA-SEQUENCE:10" in text and "#EXT-X-PART:" not in text
    assert "#EXT-X-TARGETDURATION:4" in text  # never below the longest segment


def test_blurred_live_playlist_is_unchanged_segments_only() -> None:
    text = hls.media_playlist([_seg(10, 0), _seg(11, 4)], live=True, target_s=4.0, map_each=True)
    assert "#EXT-X-PART" not in text and "SERVER-CONTROL" not in text
    assert text.count("#EXT-X-MAP") == 2 and "#EXT-X-START:TIME-OFFSET=-4,PRECISE=NO" in text


@pytest.mark.parametrize(("setting", "durations", "expected"), [
    (0.5, [0.48, 0.5, 0.2], 0.5),
    (0.5, [0.4, 0.4, 0.4], 0.4),  # equal parts of a 2 s GOP: announced as they are, so none is under 85%
    (0.5, [2.0, 0.5], 2.0),  # one fragment per GOP (a recorder without parts): PART-TARGET must cover it
    (0.5, [0.5204], 0.521),
    (0.5, [], 0.5),
])
def test_part_target(setting: float, durations: list[float], expected: float) -> None:
    pl = hls.PartList("parts/x.mp4", tuple(hls.Part(0, 1, d, True) for d in durations))
    assert hls.part_target(setting, [pl]) == pytest.approx(expected)


COUNTS = {6: 8, 7: 8, 8: 3}  # segments 6 and 7 published (8 parts each); 8 in progress with 3 parts


@pytest.mark.parametrize(("last", "counts", "msn", "part", "ready"), [
    (7, COUNTS, 8, 2, True),
    (7, COUNTS, 8, 3, False),  # the next part of the segment in progress
    (7, COUNTS, 8, None, False),  # the whole segment 8: not published yet
    (7, COUNTS, 7, None, True),
    (7, COUNTS, 5, 30, True),  # long past
    (7, COUNTS, 7, 7, True),
    (7, COUNTS, 7, 8, True),  # past the last part of 7: means part 0 of 8, which exists
    (7, {7: 8, 8: 0}, 7, 8, False),  # ... and which does not yet
    (7, {7: 8}, 7, 20, False),
    (7, {6: 8}, 7, 3, True),  # published, parts not listed: complete anyway
    (7, COUNTS, 9, 0, False),
    (-1, {}, 0, 0, False),
])
def test_reload_ready(last: int, counts: dict[int, int], msn: int, part: int | None, ready: bool) -> None:
    assert hls.reload_ready(last, counts, msn, part) is ready


@pytest.mark.parametrize(("last", "msn", "too_far"), [(7, 8, False), (7, 9, False), (7, 10, True), (-1, 2, True)])
def test_reload_too_far(last: int, msn: int, too_far: bool) -> None:
    assert hls.reload_too_far(last, msn) is too_far


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 100, None),
    ("bytes=0-0", 100, (0, 1)),
    ("bytes=10-19", 100, (10, 20)),
    ("bytes=90-", 100, (90, 100)),
    ("bytes=90-200", 100, (90, 100)),
    ("bytes=-5", 100, (95, 100)),
    ("bytes=-500", 100, (0, 100)),
    ("Bytes = 1 - 2", 100, (1, 3)),
    ("bytes=0-1,5-6", 100, None),  # several ranges: the whole resource instead
    ("bytes=9-3", 100, None),  # invalid: ignored
    ("items=1-2", 100, None),
    ("bytes=-", 100, None),
])
def test_byte_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-160", "bytes=-0"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 100)


def test_part_uris_name_the_published_file_and_map_back_to_it() -> None:
    published = segment_path(7, T0)
    assert part_uri(partial_path(7, T0)) == part_uri(published) == "parts/20261122T043512.250000Z.mp4"
    assert published_rel(7, "20261122T043512.250000Z.mp4") == published


@pytest.mark.parametrize("name", ["../../etc/passwd", "20261122T043512.250000Z.mp4.partial", "x.mp4",
                                  "20261399T043512.250000Z.mp4"])
def test_malformed_part_names_are_not_found(name: str) -> None:
    assert published_rel(7, name) is None
