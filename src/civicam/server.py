"""The hub process: the HTTP app plus the background services (recording, analytics) under one lifecycle."""

from __future__ import annotations

import logging

import uvicorn

from civicam.api.app import create_app
from civicam.context import Context

log = logging.getLogger("civicam")


def run(ctx: Context, host: str, port: int, cluster: str | None = None) -> None:
    """Serve until stopped; ``cluster``: recording and analytics run on that Ray cluster, not here."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(ctx, with_services=True, cluster=cluster)
    uvicorn.run(app, host=host, port=port, log_level="info")
