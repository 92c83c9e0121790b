"""The hub's sweep of abandoned gateway uploads (tus expiration): runs beside the API like the cleaner.

An upload the gateway never finished (it was replaced, lost its spool, or the segment went to the quota)
would otherwise keep its row and its bytes in ``incoming/`` for ever.
"""

from __future__ import annotations

import logging
import threading

from civicam.context import Context
from civicam.ingest.service import store_for
from civicam.ingest.uploads import UploadService


def sweep_interval(expiry_s: float) -> float:
    """How often to look: a quarter of the expiry (an upload outlives it by at most that), 1 s to 1 min."""
    return min(60.0, max(1.0, expiry_s / 4))


class UploadExpiry:
    """``start``/``close`` like the other background services; one pass at start, then every interval."""

    def __init__(self, ctx: Context, logger: logging.Logger) -> None:
        self._ctx = ctx
        self._log = logger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-upload-expiry", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        # The store is opened here, not at start-up: opening a local store walks the recordings tree.
        expiry_s = self._ctx.settings.edge_upload_expiry_s
        svc: UploadService | None = None
        while True:
            try:
                if svc is None:
                    svc = UploadService(self._ctx.db, store_for(self._ctx), expiry_s)
                removed = svc.expire()
                if removed:
                    self._log.info("removed %d abandoned gateway upload(s)", removed)
            except Exception:  # noqa: BLE001  a database hiccup must not end the sweep
                self._log.exception("expiring abandoned gateway uploads failed")
            if self._stop.wait(sweep_interval(expiry_s)):
                return
