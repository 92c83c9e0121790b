"""Unblurred segment bytes are never kept in a browser's cache past the grant; blurred ones may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicam.domain.segments import SegmentDone, partial_path, published_path
from civicam.ingest.service import store_for
from civicam.live.privacy import BlurredSegment
from civicam.registry import service
from civicam.storage.index import add_segment
from civicam.storage.models import Segment
from support.hub import ACTOR, Api

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
INIT = 8


class _Blurred:
    """Stands in for the blurred-segment cache: the blurring itself is not this test's subject."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, seg: Segment) -> BlurredSegment:
        return BlurredSegment(self.path, INIT)


def _segment(api: Api) -> tuple[int, int]:
    with api.ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, api.ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door")
        cam.status = "accepted"
        s.flush()
        store = store_for(api.ctx)
        part = partial_path(cam.id, T0)
        with open(store.spool(part), "wb") as fh:
            fh.write(b"I" * INIT + b"M" * 100)
        final = published_path(part)
        store.publish(part, final)
        row = add_segment(s, SegmentDone(cam.id, final, T0, T0 + timedelta(seconds=4), 108, 100, 1, INIT,
                                         "h264", 1280, 720, "s"))
        s.flush()
        return cam.id, row.id


# Each case on SQLite, and one on PostgreSQL too (grants and the unblurred check read the database; the
# headers do not depend on which one).
@pytest.mark.parametrize(("mode", "part", "db_url"), [
    ("live", "init.mp4", "sqlite"), ("live", "media.m4s", "sqlite"), ("playback", "init.mp4", "sqlite"),
    ("playback", "media.m4s", "sqlite"), pytest.param("live", "media.m4s", "postgres", marks=pytest.mark.postgres),
], indirect=["db_url"])
def test_unblurred_segments_are_no_store_and_blurred_ones_cache(api: Api, tmp_path: Path, mode: str,
                                                                 part: str) -> None:
    cam, seg = _segment(api)
    blurred = tmp_path / "blurred.mp4"
    blurred.write_bytes(b"i" * INIT + b"m" * 50)
    api.client.app.state.blurred_cache = _Blurred(blurred)  # type: ignore[attr-defined]
    investigator = api.user("investigator", "operator", view_unblurred=True)
    # Each mode's segments are opened by a view of that mode (a live grant does not open playback).
    view = {"live": ("live.m3u8", {}),
            "playback": ("playback.m3u8", {"from": T0.isoformat(), "to": (T0 + timedelta(seconds=4)).isoformat()})}
    path, interval = view[mode]
    master = api.client.get(f"/api/cameras/{cam}/{path}", params={"unblurred_reason": "incident 12", **interval},
                            headers=investigator)
    assert master.status_code == 200, master.text
    grant = master.text.split("grant=", 1)[1].split()[0]
    url = f"/api/cameras/{cam}/{mode}/segments/{seg}/{part}"
    clear = api.client.get(url, params={"grant": grant}, headers=investigator)
    assert clear.status_code == 200 and clear.content[:1] in (b"I", b"M")
    assert clear.headers["cache-control"] == "no-store"
    ranged = api.client.get(url, params={"grant": grant}, headers={**investigator, "Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.headers["cache-control"] == "no-store"
    faces_blurred = api.client.get(url, headers=investigator)
    assert faces_blurred.status_code == 200 and faces_blurred.content[:1] in (b"i", b"m")
    assert faces_blurred.headers["cache-control"] == "private, max-age=86400"
