"""The per-node worker: the hub's own recording and analytics services, for the cameras the controller gives it.

A thin actor around ``RecordingService`` and ``AnalyticsService`` (habit 1: the wrapper only starts
things). One worker per node, named after the node and detached, so it outlives a controller that dies:
the next controller asks the workers what they hold instead of starting recorders again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ray

from civicam.config.settings import Settings, get_settings
from civicam.context import Context, open_context
from civicam.ingest.service import RecordingService
from civicam.ingest.supervisor import CameraHealth

if TYPE_CHECKING:
    from civicam.analytics.service import AnalyticsHealth, AnalyticsService

log = logging.getLogger("civicam.scale.worker")


def settings_for_workers(settings: Settings) -> dict[str, Any]:
    """The settings a controller hands its workers, without the secret key (each node has its own copy)."""
    return settings.model_dump(mode="json", exclude={"secret_key"}, exclude_unset=False)


class NodeWorker:
    """Records (and analyses) its share of the cameras; every call is safe to repeat."""

    def __init__(self, settings: Mapping[str, Any], node_id: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.node_id = node_id
        # The secret key comes from this node's environment or key file, never over the cluster's wire.
        self.ctx: Context = open_context(get_settings(**dict(settings)), migrate=False)
        self._lock = threading.Lock()
        self.recording = RecordingService(self.ctx, log, scope=(), maintenance=False)
        self.recording.start()
        self.analytics: AnalyticsService | None = None
        if self.ctx.settings.analytics.enabled:
            # Imported only here: the detectors' libraries cost a node without analytics seconds of start-up.
            from civicam.analytics.service import AnalyticsService

            self.analytics = AnalyticsService(self.ctx, log, scope=())
            self.analytics.start()

    def ping(self) -> dict[str, Any]:
        """What this worker holds: the controller's view of actual state."""
        analysing = sorted(self.analytics.scope or ()) if self.analytics is not None else []
        standby = self.recording.standby()
        return {"node_id": self.node_id, "pid": os.getpid(), "recording": sorted(self.recording.scope or ()),
                "analysing": analysing, "standby": sorted(standby),
                "receiving": sorted(c for c, ok in standby.items() if ok)}

    def prepare(self, recording: list[int], timeout_s: float) -> dict[str, Any]:
        """Make-before-break: connect to cameras another node still records and hold them, writing nothing.

        The controller stops them on the old node once ``ping`` lists them as receiving, then an ``assign``
        that includes them releases them here to continue where the old node's last segment ends.
        """
        with self._lock:
            self.recording.prepare(recording, timeout_s)
        return self.ping()

    def assign(self, recording: list[int] | None = None, analysing: list[int] | None = None) -> dict[str, Any]:
        """Hold exactly these cameras (None: leave that part as it is); returns once dropped ones stopped."""
        with self._lock:
            if recording is not None:
                self.recording.set_scope(recording)
            if analysing is not None and self.analytics is not None:
                self.analytics.set_scope(analysing)
        return self.ping()

    def health(self) -> dict[int, CameraHealth]:
        """Per camera this node records: the supervisor's health snapshot (errors already redacted)."""
        return self.recording.health()

    def analytics_health(self) -> dict[int, AnalyticsHealth] | None:
        """Per camera this node analyses: lag, backlog, drops, suitability; None where analytics is off."""
        return self.analytics.analytics_health() if self.analytics is not None else None

    def close(self) -> None:
        """Stop everything (each camera finishes its segment); the controller calls it for a graceful exit."""
        with self._lock:
            if self.analytics is not None:
                self.analytics.close()
            self.recording.close()
            self.ctx.close()


NodeWorkerActor: Any = ray.remote(NodeWorker)
# Threaded, so a ping is answered while an assign waits for recorders to stop; no CPU reserved, since what
# a node can take is the controller's decision from measured capacity, not Ray's; never restarted by Ray
# (the controller decides where its cameras go).
WORKER_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 8, "max_restarts": 0}
