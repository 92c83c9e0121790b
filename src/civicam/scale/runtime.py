"""Connecting to a Ray cluster and reading its nodes: the thin layer under the worker and the controller."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from dataclasses import dataclass
from typing import Any

import ray

NAMESPACE = "civicam"
CONTROLLER = "civicam-controller"
WORKER_PREFIX = "civicam-worker-"


class RayMissing(RuntimeError):
    """Ray is not installed: ``pip install 'civicam[cluster]'``."""


@dataclass(frozen=True)
class NodeInfo:
    """One live node of the cluster, with the resources Ray says it has."""

    node_id: str
    address: str
    cpus: float
    gpus: float
    is_head: bool


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fail at once when nothing listens at ``host:port``: Ray itself would retry for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConnectionError(f"not a host:port address: {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc.strerror or exc})") from None


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (``auto``: the one this machine belongs to) in civicam's namespace."""
    if ray.is_initialized():
        return
    if address and address != "auto" and not address.startswith("ray://"):
        check_reachable(address)
    # ray.init replaces SIGTERM's handler with sys.exit; the hub's server (uvicorn) must keep its own, or a
    # stop would skip its orderly shutdown (services closed, exports ended).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    ray.init(address=address or "auto", namespace=NAMESPACE, log_to_driver=False,
             logging_level=logging.WARNING, configure_logging=True)
    if main and previous is not None:
        signal.signal(signal.SIGTERM, previous)


def disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()


def live_nodes() -> list[NodeInfo]:
    """Nodes Ray reports alive, head first (the controller runs there by preference)."""
    out: list[NodeInfo] = []
    for n in ray.nodes():  # type: ignore[no-untyped-call]
        if not n.get("Alive"):
            continue
        res: dict[str, Any] = n.get("Resources", {})
        out.append(NodeInfo(str(n["NodeID"]), str(n.get("NodeManagerAddress", "")), float(res.get("CPU", 0.0)),
                            float(res.get("GPU", 0.0)), "node:__internal_head__" in res))
    return sorted(out, key=lambda i: (not i.is_head, i.node_id))


def worker_name(node_id: str) -> str:
    return WORKER_PREFIX + node_id
