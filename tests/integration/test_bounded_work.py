"""Work any reader can ask for is bounded: camera pages in a fixed number of queries, retention with
thousands of holds in one SQL clause."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select

from civicam.context import Context
from civicam.db.models import Camera, Probe
from civicam.ingest.service import recording_settings, store_for
from civicam.registry import service
from civicam.storage.cleaner import clean
from civicam.storage.models import Hold, Segment
from support.hub import ACTOR, Api

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@contextmanager
def _statements(ctx: Context) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(ctx.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", count)


def _cameras(api: Api, n: int) -> int:
    with api.ctx.db.session() as s:
        region = service.add_region(s, ACTOR, f"R{n}")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        s.execute(insert(Camera), [{"site_id": site.id, "name": f"c{i}", "url": "rtsp://127.0.0.1:9/x",
                                    "status": "accepted"} for i in range(n)])
        ids = list(s.execute(select(Camera.id).where(Camera.site_id == site.id)).scalars())
        s.execute(insert(Probe), [{"camera_id": cid, "verdict": verdict, "measured": {}, "reasons": []}
                                  for cid in ids for verdict in ("rejected", "accepted")])
        return site.id


def test_a_camera_page_costs_the_same_few_queries_for_ten_cameras_or_two_hundred(api: Api) -> None:
    admin = api.login("admin", "Adm1n-test-pass")
    small, big = _cameras(api, 10), _cameras(api, 200)
    counts = {}
    for site, n in ((small, 10), (big, 200)):
        with _statements(api.ctx) as seen:
            r = api.client.get("/api/cameras", params={"site_id": site, "limit": 200}, headers=admin)
        assert r.status_code == 200 and len(r.json()["items"]) == n
        # Each camera shows its newest probe (the oracle: the second of the two stored accepted it).
        assert {c["last_probe"]["verdict"] for c in r.json()["items"]} == {"accepted"}
        counts[n] = len(seen)
    assert counts[200] == counts[10] <= 8
    assert api.client.get("/api/cameras", params={"limit": 201}, headers=admin).status_code == 422


def test_retention_with_two_thousand_active_holds(sqlite_ctx: Context) -> None:
    ctx = sqlite_ctx
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "R")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door").id
    old = NOW - timedelta(days=60)  # past the default 30 days: every unheld segment here expires
    store = store_for(ctx)
    with ctx.db.session() as s:
        segs = [{"camera_id": cam, "seq": i, "start": old + timedelta(minutes=i),
                 "end": old + timedelta(minutes=i, seconds=59), "path": f"{cam}/seg-{i}.mp4", "bytes": 10,
                 "keyframes": 1, "frames": 1, "init_bytes": 0, "codec": "h264", "width": 1, "height": 1,
                 "session": "s"} for i in range(4000)]
        s.execute(insert(Segment), segs)
        # Holds over every other segment: 2,000 of them, each its own row.
        s.execute(insert(Hold), [{"camera_id": cam, "start": old + timedelta(minutes=i, seconds=10),
                                  "end": old + timedelta(minutes=i, seconds=20), "kind": "evidence",
                                  "reason": f"case {i}", "created_by": "t"} for i in range(0, 4000, 2)])
    for seg in segs:
        path = Path(store.local_path(str(seg["path"])))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
    decision = clean(ctx.db, store, recording_settings(ctx), NOW, logging.getLogger("test.retention"))
    assert len(decision.delete) == 2000 and set(decision.delete.values()) == {"age"}
    with ctx.db.session() as s:
        left = set(s.execute(select(Segment.seq)).scalars())
    assert left == set(range(0, 4000, 2))  # exactly the held ones stay
