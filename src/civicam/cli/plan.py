"""``civicam plan``: what a deployment of N cameras needs, from civicam's own measured figures."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from civicam.cli.common import fail, out, print_json
from civicam.domain.measured import Measured
from civicam.domain.planning import Line, PlanError, PlanInput, plan


def _human(line: Line) -> str:
    if line.value is None:
        return "not measured"
    if line.unit == "bytes":
        value = line.value
        for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
            if value < 1000 or unit == "EB":
                return f"{value:,.2f} {unit}"
            value /= 1000
    if line.unit in ("cores", "Gbit/s"):
        return f"{line.value:,.1f} {line.unit}"
    return f"{line.value:,.0f} {line.unit}"


def plan_command(
    cameras: Annotated[int, typer.Option("--cameras", help="Cameras in the deployment.", min=1)],
    bitrate_kbps: Annotated[float, typer.Option(help="Average camera bitrate, kbit/s.")] = 2000.0,
    analytics_fps: Annotated[float, typer.Option(help="Frames per second analysed per analysed camera.")] = 5.0,
    retention_days: Annotated[float, typer.Option(help="Days of video kept.")] = 30.0,
    analytics_share: Annotated[float, typer.Option(help="Share of cameras analysed (0-1), e.g. entrances.")] = 1.0,
    source_fps: Annotated[float, typer.Option(help="Cameras' frame rate (every frame is decoded).")] = 25.0,
    segment_s: Annotated[float, typer.Option(help="Segment length, s (one index row per segment).")] = 4.0,
    cores_per_node: Annotated[int, typer.Option(help="CPU cores per node.")] = 32,
    utilisation: Annotated[float, typer.Option(help="Plan cores to be at most this busy (0-1].")] = 0.7,
    cameras_per_gpu: Annotated[float | None, typer.Option(
        help="Cameras one GPU analyses: not measured by civicam, so only your figure plans GPUs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Print the nodes, cores, GPUs, storage, bandwidth and index write rate a deployment needs."""
    inp = PlanInput(cameras=cameras, bitrate_kbps=bitrate_kbps, analytics_fps=analytics_fps,
                    retention_days=retention_days, analytics_share=analytics_share, source_fps=source_fps,
                    segment_s=segment_s, cores_per_node=cores_per_node, utilisation=utilisation,
                    cameras_per_gpu=cameras_per_gpu)
    try:
        result = plan(inp)
    except PlanError as exc:
        fail(str(exc))
    if as_json:
        print_json({"inputs": asdict(inp), "lines": [
            {"what": ln.what, "value": ln.value, "unit": ln.unit, "how": ln.how,
             "sources": [asdict(s) for s in ln.sources]} for ln in result.lines]})
        return
    table = Table(title=f"civicam plan: {cameras:,} cameras")
    for col in ("need", "value", "how", "source"):
        table.add_column(col)
    notes: list[Measured] = []
    for ln in result.lines:
        refs = []
        for src in ln.sources:
            if src not in notes:
                notes.append(src)
            refs.append(f"[{notes.index(src) + 1}]")
        table.add_row(ln.what, _human(ln), ln.how, " ".join(refs) or "inputs")
    out.print(table)
    for n, src in enumerate(notes, 1):
        out.print(f"[{n}] {src.value:g} {src.unit}: {src.source}, measured {src.measured}", highlight=False,
                  markup=False)
