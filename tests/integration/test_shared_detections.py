"""Analytics of a segment the blurred live view has blurred takes the view's detections (analytics/shared.py)
instead of decoding and detecting it again, and counts what decoding counts."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicam.analytics.aggregation import total
from civicam.analytics.service import AnalyticsService
from civicam.config.analytics import AnalyticsSettings
from civicam.context import Context, open_context
from civicam.domain.segments import partial_path, segment_path
from civicam.ingest.service import store_for
from civicam.live.blurred_live import LiveBlur
from civicam.registry import service
from civicam.storage.reconcile import reconcile
from support.cityhub import wait_for
from support.faces import face_clip, record_live, visible_faces
from support.hub import ACTOR, make_settings

LOG = logging.getLogger("test")


def _hub(root: Path) -> Context:
    ctx = open_context(make_settings(root / "data", f"sqlite:///{root / 'civicam.db'}"), create=True)
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door")
        cam.status = "accepted"
    return ctx


def _analyse(ctx: Context, share: bool) -> tuple[int, int, int]:
    """(people counted, segments analysed, of which from shared detections) for the newest segment."""
    start = datetime.now(UTC)
    svc = AnalyticsService(ctx, LOG, settings=AnalyticsSettings(share_live_detections=share))
    assert svc.poll_once() == 1  # the newest segment: analytics is live
    while svc.work_once(timeout=0):
        pass
    svc.flush()
    health = svc.health()[1]
    with ctx.db.session() as s:
        people = total(s, "site", 1, start - timedelta(hours=1), start + timedelta(hours=1)).people
    return people, health.analyzed_segments, health.shared_segments


@pytest.mark.timeout(300)
def test_analytics_takes_the_blurred_views_detections_and_counts_the_same(tmp_path: Path) -> None:
    counted: dict[bool, tuple[int, int, int]] = {}
    for share in (True, False):
        ctx = _hub(tmp_path / str(share))
        store = store_for(ctx)
        clip = tmp_path / f"clip-{share}.mp4"
        face_clip(clip, visible_faces(2), 2.0)
        # The pipeline follows the camera's folders of the current hour: the live segment is written now.
        live_start = datetime.now(UTC).replace(microsecond=0)
        pipe = LiveBlur(store, 1, "full", tmp_path / f"blur-{share}", first_seq=lambda _t: 0, log=LOG,
                        lease_s=300, board=ctx.detections)
        pipe.start()
        done = threading.Event()
        try:
            record_live(store, clip, live_start, timedelta(seconds=3), done)
            # The pipeline follows the files at its own pace (behind the writer on a loaded machine): closed
            # only once it has blurred the whole first segment, whose detections analytics is to take.
            wait_for(lambda p=pipe: p.frames >= 50, 90, "the blurred pipeline to blur the first segment")
        finally:
            pipe.close()
        # The next segment's two fragments were only there to end the first: the recorder never finished it.
        Path(store.spool(partial_path(1, live_start + timedelta(seconds=3)))).unlink()
        assert reconcile(ctx.db, store, LOG).indexed == 1
        assert store.local_path(segment_path(1, live_start))  # the segment analysed, published
        counted[share] = _analyse(ctx, share)
        assert pipe.frames >= 50  # the pipeline blurred the whole segment (and the next one's start)
        ctx.close()
    # Shared: analysed from the view's detections, nothing decoded; not shared: decoded and detected.
    assert counted[True][1:] == (1, 1) and counted[False][1:] == (1, 0), counted
    # The same two walkers either way (face_clip: two people crossing; the analytics tests' oracle).
    assert counted[True][0] == counted[False][0] == 2, counted
