"""``civicam plan`` as an operator runs it: a real process, its table, JSON and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

CIVICAM = [sys.executable, "-m", "civicam", "plan"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CIVICAM, *args], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_plan_for_the_city_prints_every_figure_with_its_source() -> None:
    r = _run("--cameras", "206000")
    assert r.returncode == 0, r.stderr
    assert "206,000 cameras" in r.stdout and "412.0 Gbit/s" in r.stdout and "4.45 PB" in r.stdout
    assert "51,500 rows/s" in r.stdout and "not measured" in r.stdout
    for ref in ("[1]", "[2]", "[3]", "[4]"):  # each cited figure is listed with its section of docs/
        assert any(line.startswith(ref) and "docs/benchmarks.md" in line for line in r.stdout.splitlines()), ref


def test_plan_json_and_an_explicit_gpu_figure() -> None:
    r = _run("--cameras", "1000", "--cameras-per-gpu", "64", "--analytics-share", "0.5", "--json")
    assert r.returncode == 0, r.stderr
    lines = {ln["what"]: ln for ln in json.loads(r.stdout)["lines"]}
    assert lines["GPUs"]["value"] == 8  # ceil(500 / 64)
    assert lines["analytics cores (CPU)"]["value"] == 0.0
    assert lines["index writes"]["value"] == 250.0
    assert lines["recording cores"]["sources"][0]["source"].startswith('docs/benchmarks.md "Recording"')


def test_bad_input_exits_2() -> None:
    r = _run("--cameras", "10", "--analytics-share", "2")
    assert r.returncode == 2 and "analytics_share" in r.stderr
