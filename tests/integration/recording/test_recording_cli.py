"""The recording CLI and start-up reconcile on a store seeded with real fMP4 files (no camera needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
import typer
from recording_helpers import LOG, add_cameras, new_context
from sqlalchemy import select
from typer.testing import CliRunner

from civicam.cli.recordings import export, hold_app, recordings_app
from civicam.context import Context
from civicam.db.models import AuditEvent
from civicam.domain.segments import segment_path
from civicam.ingest.service import store_for
from civicam.storage.media import FMP4_OPTIONS
from civicam.storage.models import Segment
from civicam.storage.reconcile import reconcile
from support.rtsp import make_h264_file

T0 = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)


def _seed_segment(ctx: Context, cam: int, clip: Path, start: datetime) -> str:
    """Remux an H.264 clip into the store exactly as the recorder lays segments out."""
    rel = segment_path(cam, start)
    dest = store_for(ctx).spool(rel)
    with av.open(str(clip)) as inp, av.open(dest, "w", format="mp4", options=FMP4_OPTIONS) as out:
        ost = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(video=0):
            if packet.dts is None:
                continue
            packet.stream = ost
            out.mux(packet)
    return rel


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Context, int]:
    ctx = new_context(tmp_path / "hub")
    (cam,) = add_cameras(ctx, ["rtsp://127.0.0.1:9/none"])
    clip = make_h264_file(tmp_path / "clip.mp4", width=320, height=240, seconds=6)
    _seed_segment(ctx, cam, clip, T0)
    with ctx.db.session() as s:  # a row whose file is gone must be dropped
        s.add(Segment(camera_id=cam, seq=0, start=T0 - timedelta(hours=1), end=T0 - timedelta(minutes=59),
                      path=segment_path(cam, T0 - timedelta(hours=1)), bytes=1, keyframes=1))
    report = reconcile(ctx.db, store_for(ctx), LOG)
    assert (report.indexed, report.removed_rows) == (1, 1)
    monkeypatch.setenv("CIVICAM_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("CIVICAM_DATABASE_URL", ctx.settings.effective_database_url)
    return ctx, cam


def _app() -> typer.Typer:
    """Mounted the way the lead mounts them in civicam.cli.main."""
    app = typer.Typer()
    app.add_typer(recordings_app, name="recordings")
    app.add_typer(hold_app, name="hold")
    app.command("export")(export)
    return app


def test_list_export_and_holds(seeded: tuple[Context, int], tmp_path: Path) -> None:
    ctx, cam = seeded
    runner = CliRunner()
    app = _app()
    listed = runner.invoke(app, ["recordings", "list", str(cam), "--json"])
    assert listed.exit_code == 0, listed.output
    segs = json.loads(listed.stdout)["segments"]
    assert len(segs) == 1 and segs[0]["duration_s"] == pytest.approx(6.0, abs=0.05)
    assert segs[0]["width"] == 320

    out = tmp_path / "clip-out.mp4"
    frm, to = (T0 + timedelta(seconds=2.5)).isoformat(), (T0 + timedelta(seconds=5)).isoformat()
    done = runner.invoke(app, ["export", str(cam), "--from", frm, "--to", to, "-o", str(out), "--reason", "case 9"])
    assert done.exit_code == 0, done.output
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == 75  # from the keyframe at 2 s (at or before 2.5 s) to 5 s, at 25 fps
    with ctx.db.session() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "recording.export")).scalar_one()
        assert ev.detail["reason"] == "case 9" and ev.actor.startswith("cli:")

    bad = runner.invoke(app, ["export", str(cam), "--from", to, "--to", frm, "-o", str(out), "--reason", "x"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["export", "999", "--from", frm, "--to", to, "-o", str(out), "--reason", "x"])
    assert missing.exit_code == 2

    made = runner.invoke(app, ["hold", "create", str(cam), "--from", frm, "--to", to, "--reason", "evidence", "--json"])
    assert made.exit_code == 0, made.output
    hold_id = json.loads(made.stdout)["id"]
    held = json.loads(runner.invoke(app, ["hold", "list", str(cam), "--json"]).stdout)
    assert [h["id"] for h in held] == [hold_id]
    assert runner.invoke(app, ["hold", "release", str(hold_id)]).exit_code == 0
    assert runner.invoke(app, ["hold", "release", str(hold_id)]).exit_code == 2
    assert json.loads(runner.invoke(app, ["hold", "list", str(cam), "--json"]).stdout) == []
