"""civicam plan's pure function: hand-computed table rows, the doc figures it cites, and bad inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from civicam.domain import measured
from civicam.domain.planning import PlanError, PlanInput, analytics_core_s_per_camera_s, plan

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(("inp", "rec_cores", "ana_cores", "gpus", "rows_s", "nodes", "gbit_s", "tb_day"), [
    # 1,200 cameras: 1200 x 0.045 / 60 = 0.9 busy cores -> 0.9 / 0.7; analytics (67.5 + 58) ms/s each;
    # (1.29 + 215.1) cores / 32 per node -> 7 nodes.
    (PlanInput(cameras=1200), 0.9 / 0.7, 1200 * 0.1255 / 0.7, None, 300.0, 7, 2.4, 25.92),
    # Only a tenth analysed, at 2 fps, 1 Mbit/s, 8 s segments, 64-core nodes, fully busy cores.
    (PlanInput(cameras=10_000, bitrate_kbps=1000, analytics_fps=2, analytics_share=0.1, segment_s=8,
               cores_per_node=64, utilisation=1.0), 7.5, 1000 * (0.0675 + 0.0232), None, 1250.0, 2, 10.0, 108.0),
    # GPUs only from an explicit per-GPU figure: 500 analysed cameras at 40 a GPU -> 13 GPUs, no CPU analytics.
    (PlanInput(cameras=500, cameras_per_gpu=40), 0.375 / 0.7, 0.0, 13, 125.0, 1, 1.0, 10.8),
    # Nothing analysed.
    (PlanInput(cameras=3, analytics_share=0.0), 0.00225 / 0.7, 0.0, None, 0.75, 1, 0.006, 0.0648),
])
def test_plan_table(inp: PlanInput, rec_cores: float, ana_cores: float, gpus: int | None, rows_s: float,
                    nodes: int, gbit_s: float, tb_day: float) -> None:
    p = plan(inp)
    assert p.recording_cores == pytest.approx(rec_cores)
    assert p.analytics_cores == pytest.approx(ana_cores)
    assert p.gpus == gpus
    assert p.index_rows_per_s == pytest.approx(rows_s)
    assert p.nodes == nodes
    assert p.ingest_gbit_s == pytest.approx(gbit_s)
    assert p.storage_bytes_per_day == pytest.approx(tb_day * 1e12)
    assert p.storage_bytes == pytest.approx(tb_day * 1e12 * inp.retention_days)


def test_the_city_of_the_issue() -> None:
    """206,000 cameras at about 2 Mbit/s: about 400 Gbit/s of ingest and some 4 PB of video a day (#12)."""
    p = plan(PlanInput(cameras=206_000))
    assert 400 <= p.ingest_gbit_s <= 420
    assert 4e15 <= p.storage_bytes_per_day <= 4.5e15
    assert 20_000 <= p.index_rows_per_s <= 52_000  # the issue's 20,000-50,000 rows a second (4-10 s segments)
    gpu_line = next(ln for ln in p.lines if ln.what == "GPUs")
    assert gpu_line.value is None and "not measured" in gpu_line.how


def test_the_analytics_model_reproduces_the_measured_cameras_per_core() -> None:
    """Decode of every frame plus detection of the analysed ones, from the stage figures, gives the
    section's separately measured "cameras one core sustains" at 5 fps (within 2 %)."""
    per_core = 1 / analytics_core_s_per_camera_s(25, 5)
    assert per_core == pytest.approx(measured.ANALYTICS_CAMERAS_PER_CORE_AT_5_FPS.value, rel=0.02)


@pytest.mark.parametrize("name", sorted(measured.ALL))
def test_every_figure_is_in_the_doc_section_it_cites(name: str) -> None:
    fig = measured.ALL[name]
    doc, section = re.match(r'(docs/[\w.-]+) "([^"]+)"', fig.source).groups()  # type: ignore[union-attr]
    text = (DOCS.parent / doc).read_text()
    heads = [m for m in re.finditer(r"^## (.+)$", text, re.M)]
    start = next(m for m in heads if m.group(1) == section)
    after = [m.start() for m in heads if m.start() > start.start()]
    body = text[start.end():after[0] if after else len(text)]
    # The figure, or for the derived one the two it is derived from, appears in that section.
    shown = [f"{fig.value:,g}", f"{fig.value:g}"]
    if name == "analysis":
        decode = measured.DECODE_MS_PER_FRAME.value
        assert f"{fig.value + decode:g}" in body and f"{decode:g}" in body
    else:
        assert any(s in body for s in shown), (name, shown, section)


@pytest.mark.parametrize(("field", "value"), [
    ("cameras", 0), ("bitrate_kbps", 0), ("analytics_fps", 30), ("analytics_fps", -1), ("analytics_share", 1.5),
    ("retention_days", -1), ("cores_per_node", 0), ("utilisation", 0), ("cameras_per_gpu", 0), ("segment_s", 0),
])
def test_bad_inputs_are_refused(field: str, value: float) -> None:
    with pytest.raises(PlanError, match=field):
        plan(PlanInput(**{"cameras": 10, field: value}))  # type: ignore[arg-type]
