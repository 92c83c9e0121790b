"""The wizard's probe job runner: bounded threads, a bounded queue with a clear error, owner-only jobs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from civicam.audit.log import Actor
from civicam.registry.probe_jobs import ProbeJobs, ProbeJobsFull

ALICE = Actor(name="alice", source="t", role="site_rep", site_id=1, user_id=1)
BOB = Actor(name="bob", source="t", role="site_rep", site_id=1, user_id=2)


def wait_until(cond: Any, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)  # polling a condition against a deadline


def test_at_most_workers_run_and_a_full_queue_is_refused() -> None:
    release = threading.Event()
    running: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def probe(actor: Actor, camera_id: int) -> dict[str, Any]:
        with lock:
            running.append(camera_id)
            peak[0] = max(peak[0], len(running))
        release.wait(30)
        with lock:
            running.remove(camera_id)
        return {"verdict": "accepted", "camera": camera_id}

    jobs = ProbeJobs(probe, logging.getLogger("test"), workers=2, max_pending=4)
    try:
        submitted = [jobs.submit(ALICE, i, 1.0, 1.0) for i in range(4)]
        threads_before = threading.active_count()
        with pytest.raises(ProbeJobsFull, match="at most 4"):
            jobs.submit(ALICE, 99, 1.0, 1.0)
        wait_until(lambda: len(running) == 2)
        assert threading.active_count() == threads_before  # a refused job starts no thread
        assert sorted(j.public(0)["state"] for j in submitted) == ["queued", "queued", "running", "running"]
        release.set()
        wait_until(lambda: all(j.state == "done" for j in submitted))
        assert peak[0] == 2
        assert [j.result for j in submitted] == [{"verdict": "accepted", "camera": i} for i in range(4)]
        assert jobs.submit(ALICE, 5, 1.0, 1.0) is not None  # room again once they finished
    finally:
        release.set()
        jobs.close()


def test_jobs_are_seen_by_their_owner_only_and_failures_are_redacted() -> None:
    def probe(actor: Actor, camera_id: int) -> dict[str, Any]:
        raise RuntimeError("cannot open rtsp://admin:hunter2@10.0.0.5/stream")

    jobs = ProbeJobs(probe, logging.getLogger("test"), workers=1, max_pending=1)
    try:
        job = jobs.submit(ALICE, 7, 1.0, 1.0)
        wait_until(lambda: job.state == "failed")
        assert jobs.get(job.id, ALICE.user_id) is job
        assert jobs.get(job.id, BOB.user_id) is None
        assert jobs.get("no-such-job", ALICE.user_id) is None
        assert job.error == "cannot open rtsp://***@10.0.0.5/stream"
    finally:
        jobs.close()


def test_a_closed_runner_refuses_new_jobs() -> None:
    jobs = ProbeJobs(lambda a, c: {}, logging.getLogger("test"), workers=1, max_pending=1)
    jobs.close()
    with pytest.raises(ProbeJobsFull, match="shutting down"):
        jobs.submit(ALICE, 1, 1.0, 1.0)
