"""The cluster scenario, run inside the test's own network namespace (loopback only) by test_cluster.py.

A Ray cluster of 3 simulated nodes (``ray.cluster_utils.Cluster``), the RTSP test server with one mount
per camera, and civicam's controller; then a node is killed, one is added and the controller is killed.
It prints one JSON object with what it did and when; test_cluster.py checks the outcome in the database.

Usage: python scenario.py CONFIG_JSON   (PYTHONPATH must hold tests/, for ``support``)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import ray
from ray.cluster_utils import Cluster
from sqlalchemy import func, select

from civicam.config.settings import get_settings
from civicam.db.session import Database
from civicam.scale.controller import cluster_analytics_health, cluster_health, ensure_controller, find_controller
from civicam.scale.runtime import NAMESPACE, worker_name
from civicam.storage.models import Segment
from support.rtsp import RtspServer

T = TypeVar("T")
log = logging.getLogger("scenario")


def now() -> str:
    return datetime.now(UTC).isoformat()


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001  a status call during a controller restart may fail; retry
            log.info("waiting for %s: %s", what, exc)
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)  # polling interval; the condition is what synchronises


def status_once(timeout: float = 10) -> dict[str, Any]:
    controller = find_controller()
    if controller is None:
        raise RuntimeError("no controller")
    return dict(ray.get(controller.status.remote(), timeout=timeout))


def status() -> dict[str, Any]:
    """The controller's status, retried while Ray restarts it (a call may reach the dying instance)."""
    return wait_for(status_once, 60, "the controller's status")


def holdings(st: dict[str, Any]) -> dict[str, list[int]]:
    return {n["node_id"]: n["recording"] for n in st["nodes"] if n["ready"]}


def worker_holdings(node_ids: list[str]) -> dict[str, list[int]]:
    """Straight from each worker, not through the controller: the oracle for "no duplicate recorders"."""
    out = {}
    for node_id in node_ids:
        handle = ray.get_actor(worker_name(node_id), namespace=NAMESPACE)
        out[node_id] = list(ray.get(handle.ping.remote(), timeout=20)["recording"])
    return out


def worker_analysing(node_ids: list[str]) -> list[int]:
    """The cameras the workers themselves say they analyse: the oracle for the analytics health's list."""
    out: list[int] = []
    for node_id in node_ids:
        handle = ray.get_actor(worker_name(node_id), namespace=NAMESPACE)
        out += ray.get(handle.ping.remote(), timeout=20)["analysing"]
    return sorted(out)


def analytics_seen(cams: list[int]) -> dict[str, Any] | None:
    """The cluster's analytics health once every analysed camera has analysed a segment (else None)."""
    health = cluster_analytics_health(find_controller())
    log.info("analytics health %s, workers analyse %s", health, cams)
    if not health or sorted(health) != cams or any(h.analyzed_segments < 1 for h in health.values()):
        return None
    return {str(c): {"analyzed": h.analyzed_segments, "lag_s": h.lag_s, "errors": h.errors}
            for c, h in health.items()}


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    cfg = json.loads(sys.argv[1])
    cams: list[int] = cfg["cameras"]
    settings = get_settings(**cfg["settings"])
    db = Database(settings.effective_database_url)
    report: dict[str, Any] = {"cameras": cams}

    def recorded_since(cameras: list[int], since: datetime) -> dict[int, datetime] | None:
        with db.session() as s:
            query = (select(Segment.camera_id, func.min(Segment.start))
                     .where(Segment.camera_id.in_(cameras), Segment.start >= since).group_by(Segment.camera_id))
            rows = {int(cam): start for cam, start in s.execute(query).all()}
        return rows if len(rows) == len(cameras) else None

    def balanced(nodes: int, each: int) -> dict[str, list[int]] | None:
        st = status()
        held = holdings(st)
        ok = len(held) == nodes and all(len(c) == each for c in held.values())
        return held if ok and sorted(c for cs in held.values() for c in cs) == sorted(cams) else None

    node_args = {"num_cpus": 1, "include_dashboard": False}
    with RtspServer(cfg["mounts"], port=cfg["rtsp_port"]):
        t0 = time.monotonic()
        cluster = Cluster(initialize_head=True, head_node_args={
            **node_args, "temp_dir": os.path.join(cfg["ray_temp"], "ray"),
            # Node death noticed in ~3 s instead of Ray's default 15+ s; the controller repairs the next round.
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
                               "health_check_initial_delay_ms": 1000,
                               # No idle Python workers started ahead: on 2 shared cores they cost seconds.
                               "enable_worker_prestart": False, "prestart_worker_first_driver": False},
        })
        try:
            workers = [cluster.add_node(wait=False, **node_args) for _ in range(2)]
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
            report["cluster_up_s"] = time.monotonic() - t0
            ensure_controller(settings)
            start = datetime.now(UTC)
            wait_for(lambda: balanced(3, 10), 60, "30 cameras on 3 nodes, 10 each")
            wait_for(lambda: recorded_since(cams, start), 40, "a segment from every camera")
            report["recording_s"] = time.monotonic() - t0
            # What the dashboard's recording health shows in cluster mode, gathered from the workers.
            report["health"] = {str(c): h.state for c, h in cluster_health(find_controller()).items()}

            # 1. A node dies (SIGKILL of its raylet and workers): its cameras resume on the other two.
            before = holdings(status())
            victim = workers[0]
            victim_id = victim.node_id
            lost = before[victim_id]
            report["removed_node"], report["lost"] = victim_id, lost
            report["t_remove"] = now()
            t_remove = datetime.fromisoformat(report["t_remove"])
            cluster.remove_node(victim, allow_graceful=False)
            wait_for(lambda: balanced(2, 15), 40, "the lost cameras placed on the other nodes")
            resumed = wait_for(lambda: recorded_since(lost, t_remove), 40, "the lost cameras recording again")
            report["resumed"] = {str(c): t.isoformat() for c, t in resumed.items()}
            report["after_remove"] = holdings(status())

            # 2. A node joins: a third of the cameras move to it; the others are not touched.
            report["t_add"] = now()
            cluster.add_node(**node_args)
            report["after_add"] = wait_for(lambda: balanced(3, 10), 60, "the load rebalanced over 3 nodes")
            t_add = datetime.fromisoformat(report["t_add"])
            new_node = next(n for n in report["after_add"] if n not in report["after_remove"])
            moved = report["after_add"][new_node]
            report["moved"] = moved
            wait_for(lambda: recorded_since(moved, t_add), 40, "the moved cameras recording on the new node")
            report["t_added_settled"] = now()

            # 3. The controller dies; Ray restarts it, and the new one adopts the workers as they are.
            nodes = list(report["after_add"])
            report["before_kill"] = worker_holdings(nodes)
            controller = find_controller()
            report["t_kill"] = now()
            ray.kill(controller, no_restart=False)
            wait_for(lambda: any("took over" in e for e in status()["events"]), 60, "a new controller taking over")
            report["t_took_over"] = now()
            st = status()
            report["takeover_events"] = [e for e in st["events"] if "took over" in e or "started" in e]
            # A few rounds of the new controller: it must leave everything where it is.
            rounds = st["rounds"]
            wait_for(lambda: status()["rounds"] >= rounds + 3, 30, "three rounds of the new controller")
            report["after_kill"] = worker_holdings(nodes)
            # Analytics health in cluster mode (what /api/analytics/health shows), against the workers' own word.
            report["analysing"] = worker_analysing(nodes)
            report["analytics_health"] = wait_for(lambda: analytics_seen(report["analysing"]), 60,
                                                  "every analysed camera analysing a segment")
            report["controller_events"] = status()["events"]
            report["t_end"] = now()
            # Orderly end: the controller stops every worker (each finishes its segment), then goes.
            controller = find_controller()
            if controller is not None:
                ray.get(controller.shutdown.remote(), timeout=60)
                ray.kill(controller, no_restart=True)
            report["total_s"] = time.monotonic() - t0
        finally:
            print(json.dumps(report), flush=True)
            ray.shutdown()
            cluster.shutdown()
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
