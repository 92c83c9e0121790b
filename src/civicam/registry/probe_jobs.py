"""Background probe jobs for the onboarding wizard: a bounded worker pool with a bounded queue.

A job probes one camera through ``registry.onboarding.probe_cameras`` (scoped, stored and audited exactly
as ``POST /api/cameras/{id}/probe``) while the browser polls its progress. At most ``workers`` probes run
at once and at most ``max_pending`` jobs wait; one more is refused with ``ProbeJobsFull`` (a clear error
for the user) rather than a new thread, so no number of clicks can start an unbounded number of probes.
Finished jobs are forgotten after ``keep_s``. ``start()``/``close()`` like every service.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from civicam.audit.log import Actor
from civicam.domain.urls import redact

# A job: (actor, camera id) -> the probe's report as a JSON-ready dict.
ProbeFn = Callable[[Actor, int], dict[str, Any]]


class ProbeJobsFull(RuntimeError):
    """Too many probes are running or waiting; try again when some have finished."""


@dataclass
class ProbeJob:
    id: str
    camera_id: int
    user_id: int | None
    seconds: float
    timeout_s: float
    started: float
    state: str = "queued"  # queued, running, done, failed
    result: dict[str, Any] | None = None
    error: str | None = None
    elapsed: float = 0.0
    finished: float | None = field(default=None, repr=False)

    def public(self, now: float) -> dict[str, Any]:
        elapsed = self.elapsed if self.state in ("done", "failed") else now - self.started
        return {"id": self.id, "camera_id": self.camera_id, "state": self.state, "elapsed_s": round(elapsed, 1),
                "expected_s": self.seconds, "timeout_s": self.timeout_s, "result": self.result,
                "error": self.error}


class ProbeJobs:
    """Runs probe jobs on ``workers`` threads with at most ``max_pending`` jobs not yet finished."""

    def __init__(self, probe: ProbeFn, logger: logging.Logger, workers: int = 4, max_pending: int = 32,
                 keep_s: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        if workers < 1 or max_pending < workers:
            raise ValueError("need workers >= 1 and max_pending >= workers")
        self.probe, self.log, self.workers, self.max_pending, self.keep_s = probe, logger, workers, max_pending, keep_s
        self.clock = clock
        self._jobs: dict[str, ProbeJob] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def start(self) -> None:
        with self._lock:
            if self._pool is None and not self._closed:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="web-probe")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def pending(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state in ("queued", "running"))

    def submit(self, actor: Actor, camera_id: int, seconds: float, timeout_s: float,
               job_id: str | None = None) -> ProbeJob:
        """Queue a probe of ``camera_id`` for ``actor``; ``ProbeJobsFull`` when the queue is full.
        ``job_id``: the id to give it (a signed one that other API processes can read, registry/job_ids.py)."""
        self.start()
        now = self.clock()
        with self._lock:
            if self._pool is None:
                raise ProbeJobsFull("The hub is shutting down; no new probes are started.")
            for key in [k for k, j in self._jobs.items() if j.finished is not None and now - j.finished > self.keep_s]:
                del self._jobs[key]
            busy = sum(1 for j in self._jobs.values() if j.state in ("queued", "running"))
            if busy >= self.max_pending:
                raise ProbeJobsFull(f"{busy} probes are already running or waiting (at most {self.max_pending}); "
                                    "try again when some have finished.")
            job = ProbeJob(id=job_id or secrets.token_urlsafe(12), camera_id=camera_id, user_id=actor.user_id,
                           seconds=seconds, timeout_s=timeout_s, started=now)
            self._jobs[job.id] = job
            self._pool.submit(self._run, job, actor)
        return job

    def get(self, job_id: str, user_id: int | None) -> ProbeJob | None:
        """The job if it exists and belongs to ``user_id`` (others' jobs are not told apart from none)."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.user_id == user_id else None

    def _run(self, job: ProbeJob, actor: Actor) -> None:
        job.state = "running"
        state = "done"
        try:
            job.result = self.probe(actor, job.camera_id)
        except Exception as exc:  # noqa: BLE001 — shown to the user as the probe's failure
            job.error = redact(str(exc)) or type(exc).__name__
            state = "failed"
            self.log.info("probe job %s for camera %s failed: %s", job.id, job.camera_id, job.error)
        job.elapsed = self.clock() - job.started
        job.finished = self.clock()
        job.state = state  # last: pollers see a finished job only once it is complete
