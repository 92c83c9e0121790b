"""``civicam edge run`` (the site gateway) and ``civicam site token`` (its enrolment on the hub)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError

from civicam.cli.common import FAILED, context, fail, local_actor, out, print_json

edge_app = typer.Typer(help="The site gateway: records a site's cameras and sends them out to the hub.",
                       no_args_is_help=True)


@edge_app.command("run")
def edge_run(config: Annotated[Path, typer.Option("--config", help="The gateway's edge.toml.")]) -> None:
    """Run the gateway in the foreground until SIGINT or SIGTERM."""
    from civicam.edge.config import load_config
    from civicam.edge.gateway import Gateway

    try:
        cfg = load_config(config)
    except (OSError, ValueError, ValidationError) as exc:
        fail(f"invalid gateway configuration {config}: {exc}")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the gateway's own
    log = logging.getLogger("civicam.edge")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d; stopping the gateway", signum)
        stop.set()

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    gateway = Gateway(cfg, log)
    gateway.start()
    log.info("gateway running: %d camera(s), spool %s, hub %s", len(cfg.cameras), cfg.spool_dir, cfg.hub_url)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        gateway.close()


def site_token(
    site_id: int,
    rotate: Annotated[bool, typer.Option("--rotate", help="Revoke the live token and issue a new one.")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the site's token; its gateway is refused.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Issue the site gateway's enrolment token (shown once), rotate it, or revoke it."""
    from civicam.auth import site_tokens
    from civicam.auth.tls import hub_fingerprint

    if rotate and revoke:
        fail("--rotate and --revoke exclude each other.")
    ctx = context()
    try:
        with ctx.db.session() as s:
            if revoke:
                count = site_tokens.revoke(s, local_actor(), site_id)
                print_json({"site_id": site_id, "revoked": count}) if json_out else out.print(
                    f"site {site_id}: {count} token(s) revoked; its gateway is refused from now on")
                return
            issued = site_tokens.issue(s, local_actor(), site_id, rotate=rotate)
    except LookupError as exc:
        fail(str(exc))
    except site_tokens.SiteTokenError as exc:
        fail(str(exc), FAILED)
    fingerprint = hub_fingerprint(ctx.settings)
    if json_out:
        print_json({"site_id": site_id, "token": issued.token, "hub_fingerprint": fingerprint})
        return
    out.print(f"site {site_id} gateway token (shown once): [bold]{issued.token}[/bold]")
    out.print(f"hub certificate SHA-256 to pin: {fingerprint or '(none: run civicam init or set tls_cert)'}")
