"""EXT-X-DISCONTINUITY-SEQUENCE over a sliding live window (RFC 8216 §6.2.2) and the preload hint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from civicam.audit.log import Actor
from civicam.context import Context
from civicam.domain.segments import SegmentDone, segment_path
from civicam.live import hls
from civicam.registry import service as registry
from civicam.storage.index import DiscontinuityCounter, add_segment
from civicam.storage.models import Segment

T0 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
# Three connections, then start-up repair's recovered segments, then a fourth connection.
SESSIONS = ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["recovered", "recovered"] + ["d"] * 5
WINDOW = 4


def _seg(seq: int, session: str) -> Segment:
    start = T0 + timedelta(seconds=4 * seq)
    return Segment(id=seq + 1, camera_id=3, seq=seq, start=start, end=start + timedelta(seconds=4),
                   path=segment_path(3, start), bytes=100, init_bytes=10, session=session)


def _tags_before(lines: list[str]) -> int:
    return sum(1 for ln in lines if ln == "#EXT-X-DISCONTINUITY")


def _oracle(upto: int) -> int:
    """Discontinuities a player saw from the very first segment to segment ``upto``: the full playlist."""
    full = hls.media_playlist([_seg(i, s) for i, s in enumerate(SESSIONS[:upto + 1])], live=False)
    lines = full.splitlines()
    return _tags_before(lines)


def _fill(ctx: Context) -> int:
    actor = Actor(name="t", source="pytest", role="admin")
    with ctx.db.session() as s:
        region = registry.add_region(s, actor, "r")
        site = registry.add_site(s, actor, region, "s", "C", "c@example.org")
        cam = registry.add_camera(s, actor, ctx.secrets, site.id, "cam", "rtsp://127.0.0.1:9/x")
        for seq, session in enumerate(SESSIONS):
            start = T0 + timedelta(seconds=4 * seq)
            add_segment(s, SegmentDone(cam.id, segment_path(cam.id, start), start, start + timedelta(seconds=4),
                                       100, 100, 1, 10, "h264", 1280, 720, session), seq)
        return int(cam.id)


def test_discontinuity_sequence_matches_the_full_history_as_the_window_slides(ctx: Context) -> None:
    cam = _fill(ctx)
    counter = DiscontinuityCounter()
    with ctx.db.session() as s:
        seen: list[int] = []
        for first in range(len(SESSIONS) - WINDOW + 1):
            window = [_seg(i, SESSIONS[i]) for i in range(first, first + WINDOW)]
            d = counter.at(s, cam, first)
            text = hls.media_playlist(window, live=True, discontinuity_sequence=d)
            lines = text.splitlines()
            # A player adds the tags inside the window to the sequence number: the same count as the full
            # history gives for every segment, whichever window it is seen through.
            assert d + _tags_before(lines) == _oracle(first + WINDOW - 1), first
            assert d == _oracle(first)
            assert (f"#EXT-X-DISCONTINUITY-SEQUENCE:{d}" in lines) == (d > 0)
            seen.append(d)
        assert seen == sorted(seen) and seen[-1] == 5  # b, c, two recovered, d: never decreasing
        # Retention deleting the oldest segments must not lower it for a player still watching.
        s.execute(delete(Segment).where(Segment.seq < 8))
        assert counter.at(s, cam, len(SESSIONS) - WINDOW) == seen[-1]
        assert DiscontinuityCounter().at(s, cam, 9) == 1  # a fresh count over what is left: c, recovered


def test_preload_hint_names_the_bytes_after_the_last_part() -> None:
    start = T0 + timedelta(seconds=8)
    parts = hls.PartList("parts/x.mp4", (hls.Part(800, 1000, 0.4, True), hls.Part(1800, 700, 0.4, False)))
    edge = hls.InProgress(2, start, 800, parts, new_session=False)
    text = hls.low_latency_playlist([_seg(0, "a"), _seg(1, "a")], {}, edge, query="grant=g", target_s=4,
                                    part_target_s=0.5)
    assert text.splitlines()[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="parts/x.mp4?grant=g",BYTERANGE-START=2500'
    none = hls.low_latency_playlist([_seg(0, "a")], {}, None, query="", target_s=4, part_target_s=0.5)
    assert "PRELOAD-HINT" not in none
