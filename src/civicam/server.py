"""The hub process: the HTTP app plus the background services (recording, analytics) under one lifecycle."""

from __future__ import annotations

import logging

import uvicorn

from civicam.api.app import create_app
from civicam.context import Context

log = logging.getLogger("civicam")


def run(ctx: Context, host: str, port: int, with_services: bool = True) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(ctx, with_services=with_services)
    uvicorn.run(app, host=host, port=port, log_level="info")
