"""``civicam cluster``: start, inspect and stop the recorders and analytics on a Ray cluster."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from civicam.cli.common import FAILED, context, fail, out, print_json

cluster_app = typer.Typer(help="Recorders and analytics as Ray actors across a cluster (needs Ray: civicam's "
                          "'cluster' extra).", no_args_is_help=True)

Address = Annotated[str, typer.Option(help="The Ray cluster: host:port of its head, or 'auto' on a node of it.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _connect(address: str) -> None:
    try:
        from civicam.scale.runtime import connect
    except ImportError:
        fail("Ray is not installed; install civicam with its 'cluster' extra (pip install 'civicam\\[cluster]')")
    try:
        connect(address)
    except (ConnectionError, RuntimeError) as exc:
        fail(f"cannot reach the Ray cluster at {address}: {exc}", FAILED)


def _status(controller: Any, timeout: float) -> dict[str, Any]:
    from civicam.scale.controller import controller_status

    return controller_status(controller, timeout)


def _show(st: dict[str, Any]) -> None:
    held = sum(len(n["recording"]) for n in st["nodes"])
    out.print(f"controller: {st['rounds']} rounds, last plan {st['plan_ms']} ms; {held} camera(s) recording; "
              f"{len(st['unplaced'])} unplaced")
    for n in st["nodes"]:
        state = "ready" if n["ready"] else "starting"
        out.print(f"  {n['node_id'][:12]} {n['address']:<15} {n['cpus']:g} CPU {n['gpus']:g} GPU  {state:<8} "
                  f"recording {len(n['recording'])}/{n['capacity']}  analysing {len(n['analysing'])}",
                  highlight=False)
    for e in st["events"][-10:]:
        out.print(f"  {e}", highlight=False)


@cluster_app.command("start")
def start(address: Address = "auto", json_out: Json = False) -> None:
    """Start the controller on the cluster (idempotent); it keeps the cameras recording after this exits."""
    ctx = context()
    _connect(address)
    from civicam.scale.controller import ensure_controller

    st = _status(ensure_controller(ctx.settings), 120)
    print_json(st) if json_out else _show(st)


@cluster_app.command("status")
def status(address: Address = "auto", json_out: Json = False) -> None:
    """Nodes, what each records and analyses, and the controller's latest decisions."""
    _connect(address)
    from civicam.scale.controller import find_controller

    controller = find_controller()
    if controller is None:
        fail("no civicam controller runs on this cluster; start one with 'civicam cluster start'", FAILED)
    st = _status(controller, 30)
    print_json(st) if json_out else _show(st)


@cluster_app.command("stop")
def stop(address: Address = "auto") -> None:
    """Stop every recorder (each finishes its segment) and the controller."""
    _connect(address)
    from civicam.scale.controller import find_controller, stop_controller

    controller = find_controller()
    if controller is None:
        out.print("no civicam controller runs on this cluster; nothing to stop")
        return
    stop_controller(controller)
    out.print("stopped the controller and every worker")
