"""``civicam serve --cluster``: the API process hands recording and analytics to the cluster's controller.

The service only makes sure the controller runs and leaves it running on close: recorders live in the
node workers, so restarting or adding API processes never interrupts a recording.
"""

from __future__ import annotations

import logging

from civicam.context import Context
from civicam.scale.controller import ensure_controller
from civicam.scale.runtime import connect, disconnect


class ClusterService:
    """The hub service (start/close) that stands in for local recording and analytics in cluster mode."""

    def __init__(self, ctx: Context, address: str, logger: logging.Logger) -> None:
        self.ctx, self.address, self._log = ctx, address, logger

    def start(self) -> None:
        connect(self.address)
        ensure_controller(self.ctx.settings)
        self._log.info("recording and analytics run on the Ray cluster at %s", self.address)

    def close(self) -> None:
        disconnect()
