"""The background services a hub runs beside its API, all with the same ``start()``/``close()`` lifecycle."""

from __future__ import annotations

import logging
from typing import Protocol

from civicam.analytics.alerting import AlertService
from civicam.analytics.service import AnalyticsService
from civicam.audit.anchor import Checkpointer
from civicam.context import Context
from civicam.ingest.service import RecordingService
from civicam.ingest.upload_expiry import UploadExpiry


class Service(Protocol):
    def start(self) -> None: ...

    def close(self) -> None: ...


def background_services(ctx: Context, cluster: str | None = None) -> list[Service]:
    """Recording first (it never waits on anything else), then analytics of what it wrote, then alerts.

    ``cluster``: a Ray cluster's address; its controller records and analyses instead of this process.
    """
    if cluster is not None:
        from civicam.scale.service import ClusterService  # imports Ray: only when asked for

        return [ClusterService(ctx, cluster, logging.getLogger("civicam.cluster")),
                AlertService(ctx, logging.getLogger("civicam.alerts"), interval_s=ctx.settings.alert_interval_s),
                UploadExpiry(ctx, logging.getLogger("civicam.edge"))]
    return [
        RecordingService(ctx, logging.getLogger("civicam.recording")),
        AnalyticsService(ctx, logging.getLogger("civicam.analytics")),
        AlertService(ctx, logging.getLogger("civicam.alerts"), interval_s=ctx.settings.alert_interval_s),
        Checkpointer(ctx.db, ctx.settings, logging.getLogger("civicam.audit")),
        UploadExpiry(ctx, logging.getLogger("civicam.edge")),  # gateways' abandoned uploads (tus expiration)
    ]
