"""Upload workers of the native engine: each camera's segments in order, a slow one holding up no other."""

from __future__ import annotations

import threading

from civicam.ingest.native import Uploads


def test_per_camera_order_and_a_stuck_upload_blocks_only_its_worker() -> None:
    uploads = Uploads(workers=2)
    done: dict[int, list[int]] = {0: [], 1: []}
    release = threading.Event()
    finished = threading.Event()

    def stuck() -> None:
        release.wait(30)  # camera 0's upload hangs (a slow link) until released

    def job(cam: int, n: int) -> None:
        done[cam].append(n)
        if cam == 1 and n == 49:
            finished.set()

    uploads.submit(0, stuck)
    for n in range(50):
        uploads.submit(0, lambda n=n: job(0, n))
        uploads.submit(1, lambda n=n: job(1, n))
    assert finished.wait(30)  # camera 1 went on while camera 0 was stuck
    assert done[1] == list(range(50)) and done[0] == []
    release.set()
    deadline = threading.Event()
    for _ in range(300):
        if len(done[0]) == 50:
            break
        deadline.wait(0.1)  # polling interval; the condition is what synchronises
    assert done[0] == list(range(50))  # in order once the link came back
