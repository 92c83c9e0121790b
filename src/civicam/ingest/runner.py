"""Run the recording service alone in the foreground until SIGINT or SIGTERM (``civicam record``)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from civicam.context import Context
from civicam.ingest.service import RecordingService


def run_recorder(ctx: Context, logger: logging.Logger, ready: threading.Event | None = None) -> int:
    """Blocks until a stop signal; each camera finishes its current segment before exit."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received signal %d; stopping recorders", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    service = RecordingService(ctx, logger)
    try:
        service.start()
        if ready is not None:
            ready.set()
        logger.info("recording %d cameras; press Ctrl-C to stop", len(service.health()))
        while not stop.wait(1.0):
            pass
    finally:
        service.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def main() -> int:
    """``python -m civicam.ingest.runner``: settings from ``CIVICAM_*``, as ``civicam record`` does."""
    import sys

    from civicam.config.settings import get_settings
    from civicam.context import open_context

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    ctx = open_context(get_settings())
    try:
        return run_recorder(ctx, logging.getLogger("civicam.recording"))
    finally:
        ctx.close()


if __name__ == "__main__":
    raise SystemExit(main())
