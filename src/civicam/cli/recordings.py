"""CLI for recordings: list segments and gaps, export a clip, evidence holds, and the standalone recorder.

Mounted by ``civicam.cli.main``: ``app.add_typer(recordings_app, name="recordings")``,
``app.add_typer(hold_app, name="hold")``, ``app.command("export")(export)`` and ``app.command("record")(record)``.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from civicam.cli.common import FAILED, context, fail, local_actor, out, print_json
from civicam.ingest.service import store_for
from civicam.live.playback import (
    PlaybackError,
    create_hold,
    hold_by_id,
    hold_json,
    recordings,
    release_hold,
    run_export,
)
from civicam.registry.service import NotFound, get_camera
from civicam.storage.index import active_holds

recordings_app = typer.Typer(help="Recorded segments and gaps.", no_args_is_help=True)
hold_app = typer.Typer(help="Evidence holds: intervals retention never deletes.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
FromOpt = Annotated[datetime, typer.Option("--from", help="Start, ISO 8601 (UTC if no offset).")]
ToOpt = Annotated[datetime, typer.Option("--to", help="End, ISO 8601 (UTC if no offset).")]


def _camera(camera_id: int) -> None:
    ctx = context()
    try:
        with ctx.db.session() as s:
            get_camera(s, local_actor(), camera_id)
    except NotFound as exc:
        fail(str(exc))
    finally:
        ctx.close()


@recordings_app.command("list")
def list_recordings(
    camera_id: int,
    start: Annotated[datetime | None, typer.Option("--from", help="Start, ISO 8601.")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="End, ISO 8601.")] = None,
    json_out: Json = False,
) -> None:
    """Segments and gaps of a camera, oldest first."""
    _camera(camera_id)
    ctx = context()
    try:
        with ctx.db.session() as s:
            data = recordings(s, camera_id, start, end)
    finally:
        ctx.close()
    if json_out:
        print_json(data)
        return
    for seg in data["segments"]:
        out.print(f"{seg['start']}  {seg['duration_s']:7.3f}s  {seg['bytes']:>10} B  {seg['keyframes']} kf")
    for gap in data["gaps"]:
        out.print(f"gap {gap['start']} .. {gap['end'] or 'now'}  ({gap['reason']})")
    out.print(f"{len(data['segments'])} segments, {len(data['gaps'])} gaps")


def export(
    camera_id: int,
    start: FromOpt,
    end: ToOpt,
    output: Annotated[Path, typer.Option("-o", "--output", help="The MP4 file to write.")],
    reason: Annotated[str, typer.Option(help="Why the clip is exported; kept in the audit log.")],
    json_out: Json = False,
) -> None:
    """Export one MP4 of an interval (remuxed from the keyframe at or before --from); audited."""
    _camera(camera_id)
    ctx = context()
    try:
        outcome = run_export(ctx.db, store_for(ctx), ctx.settings.data_dir / "exports", local_actor(), camera_id,
                             start, end, reason, dest=output.resolve())
    except PlaybackError as exc:
        fail(str(exc))
    finally:
        ctx.close()
    if json_out:
        print_json(outcome.export)
    if outcome.path is None:
        fail(f"export failed: {outcome.export.get('error')}", FAILED)
    if not json_out:
        e = outcome.export
        out.print(f"Wrote {outcome.path} ({e['bytes']} bytes, first frame {e['first_frame']})")


def record() -> None:
    """Record every accepted camera in the foreground until Ctrl-C or SIGTERM (no API)."""
    from civicam.ingest.runner import run_recorder

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    ctx = context()
    try:
        raise typer.Exit(run_recorder(ctx, logging.getLogger("civicam.recording")))
    finally:
        ctx.close()


@hold_app.command("create")
def hold_create(
    camera_id: int,
    start: FromOpt,
    end: ToOpt,
    reason: Annotated[str, typer.Option(help="Why this interval must be kept; audited.")],
    json_out: Json = False,
) -> None:
    """Put an evidence hold on an interval of a camera."""
    _camera(camera_id)
    ctx = context()
    try:
        with ctx.db.session() as s:
            data = hold_json(create_hold(s, local_actor(), camera_id, start, end, reason))
    except PlaybackError as exc:
        fail(str(exc))
    finally:
        ctx.close()
    print_json(data) if json_out else out.print(f"Hold {data['id']} created.")


@hold_app.command("list")
def hold_list(camera_id: Annotated[int | None, typer.Argument()] = None, json_out: Json = False) -> None:
    """Active holds (of one camera, or all)."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            data = [hold_json(h) for h in active_holds(s, camera_id)]
    finally:
        ctx.close()
    if json_out:
        print_json(data)
        return
    for h in data:
        out.print(f"{h['id']:>5}  camera {h['camera_id']}  {h['start']} .. {h['end']}  {h['kind']}: {h['reason']}")


@hold_app.command("release")
def hold_release(hold_id: int, why: Annotated[str, typer.Option(help="Why it is released.")] = "",
                 json_out: Json = False) -> None:
    """Release a hold; retention may then delete the interval."""
    ctx = context()
    try:
        with ctx.db.session() as s:
            hold = hold_by_id(s, hold_id)
            if hold is None:
                fail(f"Hold {hold_id} not found.")
            data = hold_json(release_hold(s, local_actor(), hold, why))
    except PlaybackError as exc:
        fail(str(exc))
    finally:
        ctx.close()
    print_json(data) if json_out else out.print(f"Hold {hold_id} released.")
