"""The node worker's own logic, without a Ray cluster: the class behind the actor, called directly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from civicam.context import open_context
from civicam.registry import service
from support.hub import ACTOR, make_settings
from support.services import require


def test_worker_holds_records_and_analyses_what_it_is_assigned(tmp_path: Path, closed_port: int) -> None:
    require(importlib.util.find_spec("ray") is not None, "Ray (pip install 'civicam[cluster]')")
    from civicam.scale.worker import NodeWorker, settings_for_workers

    settings = make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'civicam.db'}",
                             recording={"min_free_bytes": 0, "backoff_min_s": 0.2})
    ctx = open_context(settings, create=True)
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        ids = []
        for n in range(3):
            # Nothing listens there: the recorders reconnect with backoff, which is all this test needs.
            cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, f"Door {n}", f"rtsp://127.0.0.1:{closed_port}/{n}")
            cam.status = "accepted" if n < 2 else "pending"
            s.flush()
            ids.append(cam.id)
    shipped = settings_for_workers(ctx.settings)
    assert "secret_key" not in shipped  # the key stays on each node
    worker = NodeWorker(shipped, "node-a")
    try:
        assert worker.ping()["recording"] == [] and worker.health() == {}
        got = worker.assign(recording=ids, analysing=ids[:1])
        assert got["recording"] == sorted(ids) and got["analysing"] == ids[:1]
        # The scope is what it was given; only accepted cameras get a recorder.
        assert set(worker.health()) == set(ids[:2])
        got = worker.assign(recording=[ids[1]])
        assert got["recording"] == [ids[1]] and got["analysing"] == ids[:1]  # None left analytics alone
        assert set(worker.health()) == {ids[1]}, "a released camera's recorder must be gone when assign returns"
    finally:
        worker.close()
    ctx.close()

