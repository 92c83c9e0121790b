"""Live analytics in the hub: recorded segments in, anonymous 15-minute counts and health out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicam.analytics.aggregation import total
from civicam.analytics.records import PeopleCount
from civicam.analytics.service import AnalyticsHealthSource, AnalyticsService
from civicam.config.analytics import AnalyticsSettings
from civicam.context import Context, open_context
from civicam.domain.segments import segment_path
from civicam.ingest.service import store_for
from civicam.registry import service
from civicam.storage.reconcile import reconcile
from support.faces import face_clip, visible_faces
from support.hub import ACTOR, Api, make_settings

T0 = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
LOG = logging.getLogger("test")


@pytest.fixture
def hub(tmp_path: Path) -> Context:
    ctx = open_context(make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'civicam.db'}"), create=True)
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door")
        cam.status = "accepted"
    return ctx


@pytest.mark.timeout(300)
def test_segments_become_counts_without_storing_anything_about_people(hub: Context) -> None:
    store = store_for(hub)
    # Analytics is live: what was recorded before it started is not re-analysed.
    face_clip(Path(store.spool(segment_path(1, T0 - timedelta(minutes=5)))), visible_faces(2), 2.0)
    assert reconcile(hub.db, store, LOG).indexed == 1
    svc = AnalyticsService(hub, LOG, settings=AnalyticsSettings(max_backlog=2), clock=lambda: T0 + timedelta(seconds=3))
    assert svc.poll_once() == 1  # the newest existing segment is where it starts
    face_clip(Path(store.spool(segment_path(1, T0))), visible_faces(2), 2.0)
    assert reconcile(hub.db, store, LOG).indexed == 1
    assert svc.poll_once() == 1
    while svc.work_once(timeout=0):
        pass
    svc.flush()  # people still in view are counted when their tracks end
    with hub.db.session() as s:
        counts = total(s, "site", 1, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
        rows = s.query(PeopleCount).all()
        columns = set(PeopleCount.__table__.columns.keys())
    # Two people walked through each of the two analysed segments; each is counted once per segment.
    assert counts.people == 4, counts
    assert counts.masked + counts.unmasked + counts.unknown == 4
    assert counts.masked <= 1  # nobody in these clips wears a mask
    assert columns == {"id", "camera_id", "bucket_start", "people", "masked", "unmasked", "unknown"}
    assert sorted((r.bucket_start, r.people) for r in rows) == [(T0 - timedelta(minutes=15), 2), (T0, 2)]
    health = svc.health()[1]
    assert health.analyzed_segments == 2 and health.backlog == 0 and health.dropped_segments == 0
    assert health.lag_s == pytest.approx(1.0, abs=0.1)
    # the detector boxes the face inside each 180 px crop (margins and hair excluded)
    assert health.suitability.faces_seen > 20 and health.suitability.median_face_px > 70


def test_a_backlog_that_overflows_drops_the_oldest_and_says_so(hub: Context) -> None:
    store = store_for(hub)
    svc = AnalyticsService(hub, LOG, settings=AnalyticsSettings(max_backlog=2))
    svc.poll_once()
    for i in range(4):
        face_clip(Path(store.spool(segment_path(1, T0 + timedelta(seconds=2 * i)))), visible_faces(1, 60), 0.4)
    reconcile(hub.db, store, LOG)
    assert svc.poll_once() == 4
    h = svc.health()[1]
    assert (h.backlog, h.dropped_segments) == (2, 2)


@pytest.mark.timeout(300)
def test_batched_analysis_counts_what_camera_by_camera_analysis_counts(tmp_path: Path) -> None:
    """Three cameras' segments detected in shared network runs (the GPU path, here on the CPU provider)."""
    counts = {}
    for mode in ("single", "batch"):
        ctx = open_context(make_settings(tmp_path / mode, f"sqlite:///{tmp_path / mode}.db"), create=True)
        with ctx.db.session() as s:
            region = service.add_region(s, ACTOR, "North")
            site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
            for n in range(3):
                cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, f"Door {n}", f"rtsp://127.0.0.1:9/d{n}")
                cam.status = "accepted"
        store = store_for(ctx)
        svc = AnalyticsService(ctx, LOG, settings=AnalyticsSettings(batch_cameras=3 if mode == "batch" else 1))
        svc.poll_once()
        for cam in (1, 2, 3):
            face_clip(Path(store.spool(segment_path(cam, T0))), visible_faces(cam), 2.0)
        reconcile(ctx.db, store, LOG)
        assert svc.poll_once() == 3
        if mode == "batch":
            assert svc.work_batch(timeout=0) == 3  # all three cameras in one batch
            assert svc.work_batch(timeout=0) == 0
        else:
            while svc.work_once(timeout=0):
                pass
        svc.flush()
        with ctx.db.session() as s:
            counts[mode] = {cam: total(s, "camera", cam, T0 - timedelta(hours=1), T0 + timedelta(hours=1)).people
                            for cam in (1, 2, 3)}
        assert {c: h.analyzed_segments for c, h in svc.health().items()} == {1: 1, 2: 1, 3: 1}
        ctx.close()
    assert counts["batch"] == counts["single"]
    # One and two people walk through cameras 1 and 2; of camera 3's three, the 2 s clip counts those
    # whose track completes (the single path is the reference for it).
    assert counts["single"][1] == 1 and counts["single"][2] == 2 and counts["single"][3] >= 2


def test_a_scoped_service_analyses_only_its_cameras(tmp_path: Path) -> None:
    """One cluster node's analytics: the cameras its controller gave it, and none once they are taken away."""
    ctx = open_context(make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'civicam.db'}"), create=True)
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        for n in range(2):
            cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, f"Door {n}", f"rtsp://127.0.0.1:9/d{n}")
            cam.status = "accepted"
    store = store_for(ctx)
    svc = AnalyticsService(ctx, LOG, scope=[2])
    svc.poll_once()
    for cam in (1, 2):
        face_clip(Path(store.spool(segment_path(cam, T0))), visible_faces(1, 60), 0.4)
    reconcile(ctx.db, store, LOG)
    assert svc.poll_once() == 1 and set(svc.health()) == {2} and set(svc.analytics_health()) == {2}
    svc.set_scope([])
    # What the node reports to the cluster's analytics health: only what it analyses now, so a camera moved
    # to another node is not reported twice (the stale state stays in ``health`` for the tracks' sake).
    assert svc.analytics_health() == {} and set(svc.health()) == {2}
    for cam in (1, 2):
        face_clip(Path(store.spool(segment_path(cam, T0 + timedelta(seconds=2)))), visible_faces(1, 60), 0.4)
    reconcile(ctx.db, store, LOG)
    assert svc.poll_once() == 0
    assert svc.health()[2].backlog == 0  # what was queued for it was dropped with it
    ctx.close()


def test_sample_frames_count_from_the_files_first_frame(tmp_path: Path) -> None:
    """A recorder's segments continue one timeline through a session: the third 2 s segment's frames are
    stamped from 4 s. Analysis counts from the file's own first frame (it adds the segment's start)."""
    from civicam.analytics.pipeline import sample_frames

    clip = tmp_path / "third.mp4"
    face_clip(clip, visible_faces(1, 60), 2.0, first_frame=2 * 2 * 25)
    times = [t for t, _ in sample_frames(clip, 5.0)]
    assert times[0] == 0.0 and len(times) == 10
    assert times == pytest.approx([0.2 * k for k in range(10)], abs=0.021)


@pytest.mark.timeout(300)
def test_people_are_counted_in_the_quarter_hour_they_were_seen(hub: Context) -> None:
    """A segment 8 minutes into a recording session: its frames are stamped from 480 s (the recorder's
    segments continue one timeline). Two people seen at 03:08 are counted in the 03:00 quarter. (Analysis
    once added the segment's start to times that already counted from the session's start: 03:16.)"""
    store = store_for(hub)
    svc = AnalyticsService(hub, LOG, settings=AnalyticsSettings(max_backlog=4), clock=lambda: T0)
    svc.poll_once()  # nothing recorded yet: starts from the beginning
    start = T0 + timedelta(minutes=8)
    face_clip(Path(store.spool(segment_path(1, start))), visible_faces(2), 2.0, step_px=0, first_frame=8 * 60 * 25)
    assert reconcile(hub.db, store, LOG).indexed == 1
    assert svc.poll_once() == 1
    while svc.work_once(timeout=0):
        pass
    svc.flush()
    with hub.db.session() as s:
        rows = sorted((r.bucket_start.replace(tzinfo=UTC), r.people) for r in s.query(PeopleCount).all())
    assert rows == [(T0, 2)], rows


def test_analytics_health_reads_whatever_analyses(sqlite_api: Api, tmp_path: Path) -> None:
    """The API's analytics health asks the AnalyticsHealthSource it runs beside: this process's analytics
    here, a cluster's workers with ``serve --cluster`` (ClusterService, checked in the cluster test)."""
    ctx = sqlite_api.ctx
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cams = []
        for n in range(2):
            cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, f"Door {n}", f"rtsp://127.0.0.1:9/d{n}")
            cam.status = "accepted"
            s.flush()
            cams.append(cam.id)
    store = store_for(ctx)
    svc = AnalyticsService(ctx, LOG, scope=[cams[1]])
    assert isinstance(svc, AnalyticsHealthSource)
    svc.poll_once()
    for cam in cams:
        face_clip(Path(store.spool(segment_path(cam, T0))), visible_faces(1, 60), 0.4)
    reconcile(ctx.db, store, LOG)
    svc.poll_once()
    headers = sqlite_api.user("watcher", "operator")
    app = sqlite_api.client.app
    app.state.services = [svc]  # type: ignore[attr-defined]
    body = sqlite_api.client.get("/api/analytics/health", headers=headers).json()
    assert body["running"] is True and [c["camera_id"] for c in body["cameras"]] == [cams[1]]
    assert body["cameras"][0]["backlog"] == 1
    app.state.services = []  # type: ignore[attr-defined]
    assert sqlite_api.client.get("/api/analytics/health", headers=headers).json() == {"running": False, "cameras": []}
