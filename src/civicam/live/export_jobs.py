"""Exports written in the background: a request puts an export on record and returns; a worker writes it.

A remuxed hour is quick, but a blurred one is a decode, a face detection and an encode of every frame
(hours of CPU on a small machine), so no request may wait for a clip. Exports run one at a time by
default: each is CPU heavy, and recording must keep its share. The queue is in memory; an export a
stopped hub did not finish is marked failed (its hold released) when the hub starts again.
"""

from __future__ import annotations

import logging
import queue
import threading

from civicam.db.session import Database
from civicam.live.playback import ExportJob, finish_export
from civicam.storage.backend import SegmentStore


class ExportWorkers:
    """Daemon threads writing queued exports, so a stopping hub is never held up by a long clip."""

    def __init__(self, db: Database, store: SegmentStore, log: logging.Logger, workers: int = 1) -> None:
        self._db, self._store, self._log = db, store, log
        self._queue: queue.Queue[ExportJob | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._run, name=f"export-{n}", daemon=True)
                         for n in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def submit(self, job: ExportJob) -> None:
        self._queue.put(job)

    def close(self, wait_s: float = 0.0) -> None:
        """Stop after the exports queued so far; wait up to ``wait_s`` for them.

        A stopping hub does not wait: an export cut short is marked failed when the hub starts again.
        """
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(wait_s)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                outcome = finish_export(self._db, self._store, job)
                self._log.info("export %s: %s", job.id, outcome.export["status"])
            except Exception:  # noqa: BLE001  one failed export must not stop the worker
                self._log.exception("export %s failed", job.id)
