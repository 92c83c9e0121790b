"""Exports written in the background: on record before the clip exists, and cleaned up after a crash."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from civicam.context import Context
from civicam.ingest.service import store_for
from civicam.live.export_jobs import ExportWorkers
from civicam.live.playback import abandon_running_exports, begin_export
from civicam.registry import service as registry
from civicam.storage.models import Export, Hold
from support.hub import ACTOR

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _camera(ctx: Context) -> int:
    with ctx.db.session() as s:
        region = registry.add_region(s, ACTOR, "region")
        site = registry.add_site(s, ACTOR, region, "site", "Contact", "c@example.org")
        cam = registry.add_camera(s, ACTOR, ctx.secrets, site.id, "a", "rtsp://127.0.0.1:1/a")
        s.flush()
        return cam.id


def _state(ctx: Context, export_id: int) -> tuple[str, str | None, bool]:
    """(status, error, whether the export's hold is still active)."""
    with ctx.db.session() as s:
        row = s.get(Export, export_id)
        assert row is not None
        holds = s.execute(select(Hold).where(Hold.kind == "export", Hold.released_at.is_(None))).scalars().all()
        return row.status, row.error, bool(holds)


def test_an_export_left_running_by_a_stopped_hub_is_failed_and_its_hold_released(ctx: Context,
                                                                                  tmp_path: Path) -> None:
    cam = _camera(ctx)
    job = begin_export(ctx.db, tmp_path, ACTOR, cam, T0, T0 + timedelta(minutes=1), "incident 9")
    # On record (and holding its interval) before a byte is written: the hub "dies" here.
    assert _state(ctx, job.id) == ("running", None, True)
    assert abandon_running_exports(ctx.db) == 1
    status, error, held = _state(ctx, job.id)
    assert status == "failed" and error is not None and "interrupted" in error and not held
    assert abandon_running_exports(ctx.db) == 0


def test_the_worker_records_the_outcome_and_releases_the_hold(ctx: Context, tmp_path: Path) -> None:
    cam = _camera(ctx)
    job = begin_export(ctx.db, tmp_path, ACTOR, cam, T0, T0 + timedelta(minutes=1), "incident 10")
    workers = ExportWorkers(ctx.db, store_for(ctx), logging.getLogger("test.exports"))
    workers.submit(job)
    workers.close(wait_s=30)  # returns once the queued export is written
    status, error, held = _state(ctx, job.id)
    # Nothing was recorded in that interval: the export fails with a reason instead of an empty clip.
    assert status == "failed" and error and not held
