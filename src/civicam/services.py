"""The background services a hub runs beside its API, all with the same ``start()``/``close()`` lifecycle."""

from __future__ import annotations

import logging
from typing import Protocol

from civicam.context import Context


class Service(Protocol):
    def start(self) -> None: ...

    def close(self) -> None: ...


def background_services(ctx: Context) -> list[Service]:
    """Recording first (it must never wait on analytics), then analytics."""
    services: list[Service] = []
    try:
        from civicam.ingest.service import RecordingService
    except ModuleNotFoundError:
        pass
    else:
        services.append(RecordingService(ctx, logging.getLogger("civicam.recording")))
    return services
