"""A camera handed between two recording services (two cluster nodes): one recorder at a time, one index."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from recording_helpers import LOG, add_cameras, fast_settings, new_context, wait_for
from sqlalchemy import select

from civicam.db.session import Database
from civicam.ingest.service import RecordingHealthSource, RecordingService
from civicam.storage.factory import open_store
from civicam.storage.models import Gap, Segment
from support.frames import first_break, frame_digests, played_frames
from support.hub import Api
from support.rtsp import RtspServer


def segments(db: Database, cam: int) -> list[Segment]:
    with db.session() as s:
        return list(s.execute(select(Segment).where(Segment.camera_id == cam).order_by(Segment.start)).scalars())


def test_handover_keeps_one_recorder_and_one_sequence(rec_server: RtspServer, tmp_path: Path) -> None:
    ctx = new_context(tmp_path / "hub")
    cam, other = add_cameras(ctx, [rec_server.url("/cam1"), rec_server.url("/cam2")])
    settings = fast_settings()
    a = RecordingService(ctx, LOG, settings=settings, scope=[cam, other], maintenance=False)
    b = RecordingService(ctx, LOG, settings=settings, scope=[], maintenance=False)
    a.start()
    b.start()
    try:
        def count_at_least(n: int) -> int | None:
            got = len(segments(ctx.db, cam))
            return got if got >= n else None

        wait_for(lambda: count_at_least(2), 40, "two segments on node a")
        # a -> b -> a: node a's index writer must not reuse the sequence numbers it remembered from before.
        for giver, taker, keep in ((a, b, [other]), (b, a, [cam, other])):
            before = len(segments(ctx.db, cam))
            giver.set_scope(keep if giver is a else [])
            assert cam not in giver.health(), "the giver still records the camera after set_scope returned"
            taker.set_scope([cam] if taker is b else keep)
            wait_for(lambda before=before: count_at_least(before + 2), 40, "segments after the handover")
        assert set(a.health()) == {cam, other} and b.health() == {}
    finally:
        a.close()
        b.close()
    rows = segments(ctx.db, cam)
    seqs = [r.seq for r in rows]
    assert seqs == list(range(len(rows))), f"sequence numbers repeat or skip across the handover: {seqs}"
    sessions = [r.session for r in rows]
    assert len(set(sessions)) >= 3  # a, b, then a again: a new connection each time
    for prev, nxt in zip(rows, rows[1:], strict=False):
        assert nxt.start >= prev.end - (prev.end - prev.start) * 0.05, "two recorders of one camera overlapped"
    with ctx.db.session() as s:
        gaps = s.execute(select(Gap).where(Gap.camera_id == cam).order_by(Gap.start)).scalars().all()
        assert len(gaps) == 2 and all(g.reason == "recorder_down" and g.end is not None for g in gaps)
        # Each gap runs from the giver's last segment to the taker's first.
        for g in gaps:
            before = [r for r in rows if r.end <= g.start]
            after = [r for r in rows if r.start >= g.end]
            assert before and after and before[-1].end == g.start and after[0].start == g.end
    ctx.close()


def test_recording_health_reads_whatever_records(sqlite_api: Api, closed_port: int) -> None:
    """The API's recording health asks the RecordingHealthSource it runs beside: this process's recorders
    here, a cluster's workers with ``serve --cluster`` (ClusterService, checked in the cluster test)."""
    ctx = sqlite_api.ctx
    cam, other = add_cameras(ctx, [f"rtsp://127.0.0.1:{closed_port}/a", f"rtsp://127.0.0.1:{closed_port}/b"])
    svc = RecordingService(ctx, LOG, settings=fast_settings(), scope=[cam], maintenance=False)
    assert isinstance(svc, RecordingHealthSource)
    svc.start()
    try:
        sqlite_api.client.app.state.services = [svc]  # type: ignore[attr-defined]
        headers = sqlite_api.user("watcher", "operator")
        body = sqlite_api.client.get("/api/recording/health", headers=headers).json()
        assert body["running"] is True and [c["camera_id"] for c in body["cameras"]] == [cam]
        sqlite_api.client.app.state.services = []  # type: ignore[attr-defined]
        assert sqlite_api.client.get("/api/recording/health", headers=headers).json() == {"running": False,
                                                                                          "cameras": []}
    finally:
        svc.close()


def test_make_before_break_handover_has_no_gap(rec_server: RtspServer, clip: Path, tmp_path: Path) -> None:
    """A camera moved with ``prepare`` first (a cluster node joined): the new recorder holds the stream while
    the old one stops at its next keyframe, then continues from exactly there. The index has no gap and no
    overlap, and playback of the window shows every picture of the looped clip once, in order."""
    ctx = new_context(tmp_path / "hub")
    cam, = add_cameras(ctx, [rec_server.url("/cam1")])
    settings = fast_settings()
    a = RecordingService(ctx, LOG, settings=settings, scope=[cam], maintenance=False)
    b = RecordingService(ctx, LOG, settings=settings, scope=[], maintenance=False)
    a.start()
    b.start()
    try:
        wait_for(lambda: len(segments(ctx.db, cam)) >= 2 or None, 40, "two segments on node a")
        b.prepare([cam], timeout_s=60)
        wait_for(lambda: b.standby().get(cam), 20, "node b's standby recorder receiving")
        assert b.health() == {}, "a standby recorder is not reported as recording"
        a.set_scope([])
        held = segments(ctx.db, cam)
        assert len({r.session for r in held}) == 1, "the standby recorder wrote before it was released"
        b.set_scope([cam])
        wait_for(lambda: len(segments(ctx.db, cam)) >= len(held) + 2 or None, 40, "segments from node b")
    finally:
        a.close()
        b.close()
    rows = segments(ctx.db, cam)
    assert [r.seq for r in rows] == list(range(len(rows)))
    turn = len(held)
    old, new = rows[turn - 1], rows[turn]
    assert old.session != new.session and {r.session for r in rows[turn:]} == {new.session}
    assert abs((new.start - old.end).total_seconds()) < 0.001, f"handover: {old.end} -> {new.start}"
    for prev, nxt in zip(rows, rows[1:], strict=False):
        assert abs((nxt.start - prev.end).total_seconds()) < 0.001
    with ctx.db.session() as s:
        assert s.execute(select(Gap).where(Gap.camera_id == cam)).scalars().all() == []
    frames = played_frames(open_store(ctx.settings), rows, old.end - timedelta(seconds=2.5),
                           old.end + timedelta(seconds=2.5), tmp_path / "window.mp4")
    steps = [(b[0] - a[0]).total_seconds() for a, b in zip(frames, frames[1:], strict=False)]
    assert len(frames) > 100 and 0.03 < min(steps) and max(steps) < 0.05, f"frame steps {steps}"
    broken = first_break([d for _, d in frames], frame_digests(clip))
    assert broken is None, f"picture {broken} of the handover window repeats or skips the stream"
    ctx.close()


def test_make_before_break_on_the_pyav_engine_records_its_short_gap(rec_server: RtspServer, tmp_path: Path) -> None:
    """The PyAV engine holds no GOPs: released, it starts at its next keyframe, and the supervisor records
    the time since the old recorder's end as a ``handover`` gap. Never an overlap, never a second writer."""
    ctx = new_context(tmp_path / "hub")
    cam, = add_cameras(ctx, [rec_server.url("/cam1")])
    settings = fast_settings(engine="pyav")
    a = RecordingService(ctx, LOG, settings=settings, scope=[cam], maintenance=False)
    b = RecordingService(ctx, LOG, settings=settings, scope=[], maintenance=False)
    a.start()
    b.start()
    try:
        wait_for(lambda: len(segments(ctx.db, cam)) >= 1 or None, 40, "a segment on node a")
        b.prepare([cam], timeout_s=60)
        wait_for(lambda: b.standby().get(cam), 20, "node b's standby recorder receiving")
        a.set_scope([])
        held = len(segments(ctx.db, cam))
        b.set_scope([cam])
        wait_for(lambda: len(segments(ctx.db, cam)) >= held + 1 or None, 40, "a segment from node b")
    finally:
        a.close()
        b.close()
    rows = segments(ctx.db, cam)
    assert [r.seq for r in rows] == list(range(len(rows)))
    old, new = rows[held - 1], rows[held]
    assert old.session != new.session and new.start > old.end
    with ctx.db.session() as s:
        gaps = s.execute(select(Gap).where(Gap.camera_id == cam)).scalars().all()
    assert [(g.reason, g.start, g.end) for g in gaps] == [("handover", old.end, new.start)]
    # Under one GOP (2 s) plus the release, even on a loaded machine.
    assert (new.start - old.end).total_seconds() < 5
    ctx.close()
