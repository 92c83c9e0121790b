"""Benchmark: the cluster controller's decision time for 200,000 cameras over N nodes, against round-robin.

# Run from the repository root:  nice .venv/bin/python bench/controller.py [--cameras 200000] [--nodes 3,10,100,1000]

The planner (civicam.domain.placement.plan) is pure, so this measures the decision alone: no Ray, no
database. Three situations per N: a full assignment from nothing (a fresh cluster or a controller that
lost everything), one node dead (its cameras re-placed), one node joined (a fair share moved to it).
The reference, measured in the same run on the same inputs, is naive round-robin (dealing every camera
to the nodes in turn), which also ignores capacity and where cameras already run: the "moves" columns
count the recorders each would restart.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from civicam.domain.placement import plan, round_robin

T = TypeVar("T")
PER_NODE_CORES = 64  # a city node; its capacity is cores x the measured 100 streams per core


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Median wall time of ``repeat`` runs (seconds) and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    assert result is not None
    return statistics.median(times), result


def by_node(assignment: dict[int, str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for cam, node in assignment.items():
        out[node].append(cam)
    return dict(out)


def moved(before: dict[int, str], after: dict[int, str]) -> int:
    return sum(1 for cam, node in after.items() if before.get(cam) != node)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=200_000)
    ap.add_argument("--nodes", default="3,10,100,1000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cams = list(range(args.cameras))
    rows = []
    for n in (int(x) for x in args.nodes.split(",")):
        per_node = max(PER_NODE_CORES * 100, -(-args.cameras // max(1, n - 1)) + 1)  # room even with one dead
        nodes = {f"node-{i:04}": per_node for i in range(n)}
        t_full, full = timed(lambda nodes=nodes: plan(cams, nodes, {}), args.repeat)
        t_rr, rr = timed(lambda nodes=nodes: round_robin(cams, nodes), args.repeat)
        actual = by_node(full.assignment)
        alive = dict(nodes)
        dead = sorted(alive)[0]
        del alive[dead]
        t_loss, loss = timed(lambda alive=alive, actual=actual: plan(cams, alive, actual), args.repeat)
        t_rr_loss, rr_loss = timed(lambda alive=alive: round_robin(cams, alive), args.repeat)
        grown = {**nodes, "node-new": per_node}
        t_join, join = timed(lambda grown=grown, actual=actual: plan(cams, grown, actual), args.repeat)
        t_rr_join, rr_join = timed(lambda grown=grown: round_robin(cams, grown), args.repeat)
        assert not full.unplaced and not loss.unplaced and len(loss.assignment) == args.cameras
        rows.append((n, t_full, t_rr, t_loss, loss.moves, len(actual[dead]), moved(rr, rr_loss), t_rr_loss,
                     t_join, join.moves, moved(rr, rr_join), t_rr_join))
    load = os.getloadavg()
    print(f"## Cluster controller (bench/controller.py, {args.cameras:,} cameras, median of {args.repeat}; "
          f"{platform.python_version()}, load average {load[0]:.1f} {load[1]:.1f})\n")
    print("| nodes | full assignment | round-robin | **ratio** | node lost: time | moves (lost cameras) "
          "| round-robin moves | node joined: time | moves | round-robin moves |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, tf, trr, tl, lm, lost, rrl, _trl, tj, jm, rrj, _trj in rows:
        print(f"| {n} | {tf * 1000:.0f} ms | {trr * 1000:.0f} ms | **{tf / trr:.1f}x** | {tl * 1000:.0f} ms | "
              f"{lm:,} ({lost:,}) | {rrl:,} | {tj * 1000:.0f} ms | {jm:,} | {rrj:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
