"""``civicam serve --cluster``: the API process hands recording and analytics to the cluster's controller.

The service only makes sure the controller runs and leaves it running on close: recorders live in the
node workers, so restarting or adding API processes never interrupts a recording.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ray.exceptions import RayError

from civicam.context import Context
from civicam.ingest.supervisor import CameraHealth
from civicam.scale.controller import cluster_analytics_health, cluster_health, ensure_controller
from civicam.scale.runtime import connect, disconnect

if TYPE_CHECKING:
    from civicam.analytics.service import AnalyticsHealth


class ClusterService:
    """The hub service (start/close) that stands in for local recording and analytics in cluster mode."""

    def __init__(self, ctx: Context, address: str, logger: logging.Logger) -> None:
        self.ctx, self.address, self._log = ctx, address, logger
        self._controller: Any = None

    def start(self) -> None:
        connect(self.address)
        self._controller = ensure_controller(self.ctx.settings)
        self._log.info("recording and analytics run on the Ray cluster at %s", self.address)

    def recording_health(self) -> dict[int, CameraHealth]:
        """What the dashboard shows for recording, gathered from the cluster's workers."""
        try:
            return cluster_health(self._controller)
        except RayError:
            self._log.warning("recording health: the cluster's controller did not answer")
            return {}

    def analytics_health(self) -> dict[int, AnalyticsHealth] | None:
        """What the dashboard shows for analytics, from the workers; None: off, or the controller is silent."""
        try:
            return cluster_analytics_health(self._controller)
        except RayError:
            self._log.warning("analytics health: the cluster's controller did not answer")
            return None

    def close(self) -> None:
        disconnect()
