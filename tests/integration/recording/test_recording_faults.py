"""Faults against real components: RTSP server restart, recorder SIGKILL, a disk quota that fills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from recording_helpers import ACTOR, LOG, add_cameras, fast_settings, file_mount, new_context, wait_for
from sqlalchemy import select

from civicam.context import Context
from civicam.ingest.service import RecordingService, store_for
from civicam.live.playback import create_hold, release_hold
from civicam.storage.index import segments_between
from civicam.storage.models import Gap, Hold, Segment
from civicam.storage.reconcile import reconcile
from support.rtsp import RtspServer

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]


def _segments(ctx: Context, cam: int) -> list[Segment]:
    with ctx.db.session() as s:
        return list(segments_between(s, cam, None, None))


def _gaps(ctx: Context, cam: int) -> list[Gap]:
    with ctx.db.session() as s:
        return list(s.execute(select(Gap).where(Gap.camera_id == cam).order_by(Gap.id)).scalars())


def test_server_restart_records_gap_and_resumes(clip: Path, tmp_path: Path) -> None:
    server = RtspServer([file_mount("/cam", clip)]).start()
    ctx = new_context(tmp_path)
    service: RecordingService | None = None
    try:
        (cam,) = add_cameras(ctx, [server.url("/cam")])
        service = RecordingService(ctx, LOG, settings=fast_settings())
        service.start()
        svc = service
        wait_for(lambda: svc.health()[cam].segments >= 2, 20, "two segments before the outage")
        server.kill()
        wait_for(lambda: svc.health()[cam].state == "reconnecting", 15, "the recorder to notice the outage")
        svc.indexer.flush()
        before = _segments(ctx, cam)
        server.start()  # same port: the recorder's backoff loop must find it again
        wait_for(lambda: len(_segments(ctx, cam)) >= len(before) + 2, 30, "recording to resume")
        health = svc.health()[cam]
        assert health.state == "online" and health.reconnects >= 1
        after = _segments(ctx, cam)
        gaps = _gaps(ctx, cam)
        assert len(gaps) == 1
        gap = gaps[0]
        resumed = after[len(before)]
        assert gap.reason == "stream_lost"
        assert gap.start == before[-1].end
        assert gap.end == resumed.start and gap.end > gap.start
        assert resumed.session != before[-1].session
        for seg in after:
            with av.open(svc.store.local_path(seg.path)) as c:
                assert sum(1 for _ in c.demux(video=0)) >= seg.frames
    finally:
        if service is not None:
            service.close()
        server.stop()
        ctx.close()


def test_sigkill_mid_segment_is_repaired_on_restart(clip: Path, tmp_path: Path) -> None:
    server = RtspServer([file_mount("/cam", clip)]).start()
    ctx = new_context(tmp_path)
    service: RecordingService | None = None
    log = open(tmp_path / "recorder.log", "w")  # noqa: SIM115
    proc: subprocess.Popen[bytes] | None = None
    try:
        (cam,) = add_cameras(ctx, [server.url("/cam")])
        store = store_for(ctx)
        env = {**os.environ, "CIVICAM_DATA_DIR": str(ctx.settings.data_dir),
               "CIVICAM_DATABASE_URL": ctx.settings.effective_database_url}
        proc = subprocess.Popen([sys.executable, "-m", "civicam.ingest.runner"], env=env, stdout=log, stderr=log)

        def torn() -> bool:
            files = list(store.list())
            published = [f for f in files if f.path.endswith(".mp4")]
            # A partial past its first fragments (0.5 s parts of a 2 s GOP): killing now tears a segment mid-way.
            partial = [f for f in files if f.path.endswith(".partial") and f.bytes > 200_000]
            return bool(published and partial)

        wait_for(torn, 40, "a published segment and a half-written one")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        partials = [f.path for f in store.list() if f.path.endswith(".partial")]
        assert partials

        report = reconcile(ctx.db, store_for(ctx), LOG)
        assert report.repaired + report.discarded == len(partials) and report.repaired >= 1
        files = {f.path for f in store.list()}
        assert not [p for p in files if p.endswith(".partial")]
        with ctx.db.session() as s:
            rows = {p for (p,) in s.execute(select(Segment.path)).tuples()}
        assert rows == files
        for seg in _segments(ctx, cam):
            with av.open(store.local_path(seg.path)) as c:
                frames = sum(1 for _ in c.decode(video=0))
            assert frames == seg.frames and frames >= 12  # at least one whole 0.5 s part survived

        # Restarted, it records again and the downtime is an explicit gap bounded by the segments around it.
        last = _segments(ctx, cam)[-1]
        service = RecordingService(ctx, LOG, settings=fast_settings())
        service.start()
        assert service.reconcile_report is not None and service.reconcile_report.repaired == 0
        wait_for(lambda: len(_segments(ctx, cam)) > len(rows), 20, "a segment after the restart")
        gap = _gaps(ctx, cam)[-1]
        assert gap.reason == "recorder_down" and gap.start == last.end
        assert gap.end == _segments(ctx, cam)[len(rows)].start
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if service is not None:
            service.close()
        server.stop()
        ctx.close()


def test_quota_deletes_oldest_respects_holds_and_pauses(clip: Path, tmp_path: Path) -> None:
    server = RtspServer([file_mount("/cam", clip)]).start()
    ctx = new_context(tmp_path)
    service: RecordingService | None = None
    quota = 3_000_000  # about six 2 s segments at 2 Mbit/s
    try:
        (cam,) = add_cameras(ctx, [server.url("/cam")])
        service = RecordingService(ctx, LOG, settings=fast_settings(quota_bytes=quota, high_watermark=0.8,
                                                                      low_watermark=0.5))
        service.start()
        svc = service
        wait_for(lambda: svc.health()[cam].segments >= 2, 20, "two segments")
        svc.indexer.flush()
        first_two = _segments(ctx, cam)[:2]
        with ctx.db.session() as s:
            hold = create_hold(s, ACTOR, cam, first_two[0].start, first_two[1].end - timedelta(milliseconds=1),
                               "evidence: test")
            hold_id = hold.id
        wait_for(lambda: svc.health()[cam].segments >= 12, 40, "twelve segments under the quota")
        svc.indexer.flush()
        segs = _segments(ctx, cam)
        ids = [s.id for s in segs]
        assert first_two[0].id in ids and first_two[1].id in ids, "held segments must survive"
        assert segs[2].start > first_two[1].end, "the oldest unheld segments were deleted first"
        assert all(os.path.exists(svc.store.local_path(s.path)) for s in first_two)
        assert svc.store.usage().used <= quota
        assert svc.health()[cam].state == "online"

        # Hold everything: the quota fills with held segments, recording pauses (an event, not a crash)...
        with ctx.db.session() as s:
            everything = create_hold(s, ACTOR, cam, datetime(2000, 1, 1, tzinfo=UTC),
                                     datetime(2100, 1, 1, tzinfo=UTC), "evidence: all")
            everything_id = everything.id
        wait_for(lambda: svc.health()[cam].disk_paused, 30, "recording to pause on the full quota")
        svc.indexer.flush()
        paused_gap = wait_for(lambda: [g for g in _gaps(ctx, cam) if g.reason == "disk_full"], 5, "a disk_full gap")[0]
        assert paused_gap.end is None
        # ...and resumes once the hold is released and the cleaner frees space.
        with ctx.db.session() as s:
            held = s.get(Hold, everything_id)
            assert held is not None
            release_hold(s, ACTOR, held, "test")
        wait_for(lambda: not svc.health()[cam].disk_paused, 30, "recording to resume")
        count = svc.health()[cam].segments
        wait_for(lambda: svc.health()[cam].segments > count, 20, "a segment after resuming")
        svc.indexer.flush()
        gap = [g for g in _gaps(ctx, cam) if g.id == paused_gap.id][0]
        assert gap.end is not None and gap.end > gap.start
        ids = [s.id for s in _segments(ctx, cam)]
        assert first_two[0].id in ids and first_two[1].id in ids
        with ctx.db.session() as s:
            still = s.get(Hold, hold_id)
            assert still is not None and still.released_at is None
    finally:
        if service is not None:
            service.close()
        server.stop()
        ctx.close()
