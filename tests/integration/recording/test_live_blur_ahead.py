"""Blurring ahead for the blurred live view, from real RTSP cameras recorded by the recording service.

Fetching a camera's blurred live playlist marks its view watched: its newest segments are blurred in the
background before any segment is requested, and a camera whose view was never opened gets nothing blurred.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import av
import pytest
from fastapi.testclient import TestClient
from recording_helpers import LOG, add_cameras, fast_settings, new_context, wait_for

from civicam.api.app import create_app
from civicam.auth.users import create_user
from civicam.context import Context
from civicam.ingest.service import RecordingService, store_for
from civicam.live.privacy import BlurredCache
from civicam.storage.index import latest_segments
from civicam.storage.models import Segment
from support.rtsp import RtspServer

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]


@dataclass
class Hub:
    ctx: Context
    service: RecordingService
    watched: int
    unwatched: int

    def service_store_path(self, seg: Segment) -> str:
        return store_for(self.ctx).local_path(seg.path)


@pytest.fixture(scope="module")
def hub(rec_server: RtspServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """Two cameras recorded in 2 s segments (kept running); a viewer without view_unblurred."""
    ctx = new_context(tmp_path_factory.mktemp("blur-ahead"))
    cams = add_cameras(ctx, [rec_server.url("/cam1"), rec_server.url("/cam2")])
    with ctx.db.session() as s:
        create_user(s, "viewer", "Viewer-Passw0rd-1", "operator")
    service = RecordingService(ctx, LOG, settings=fast_settings(segment_target_s=2.0))
    service.start()
    try:
        def published() -> bool:
            service.indexer.flush(1)
            with ctx.db.session() as s:
                return all(len(latest_segments(s, cam, 2)) >= 2 for cam in cams)

        wait_for(published, 40, "two published segments of each camera")
        yield Hub(ctx, service, cams[0], cams[1])
    finally:
        service.close()
        ctx.close()


def _newest(hub: Hub, cam: int) -> Segment:
    hub.service.indexer.flush(1)
    with hub.ctx.db.session() as s:
        seg = latest_segments(s, cam, 1)[-1]
        s.expunge(seg)
    return seg


def _first_pts(path: object) -> int:
    with av.open(str(path)) as c:
        return min(p.pts for p in c.demux(video=0) if p.size and p.pts is not None)


def _listed_ids(playlist: str) -> list[int]:
    return [int(ln.split("/")[1]) for ln in playlist.splitlines() if ln.startswith("segments/")]


def test_watched_blurred_view_is_blurred_ahead_and_unwatched_camera_is_not(hub: Hub) -> None:
    with TestClient(create_app(hub.ctx), base_url="http://127.0.0.1") as client:
        token = client.post("/api/auth/token", json={"username": "viewer", "password": "Viewer-Passw0rd-1"})
        client.cookies.set("civicam_session", token.json()["access_token"])
        cam = hub.watched
        master = client.get(f"/api/cameras/{cam}/live.m3u8")
        assert master.status_code == 200 and 'VALUE="true"' in master.text  # the blurred default view
        media_uri = [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")][0]
        first = client.get(f"/api/cameras/{cam}/{media_uri}")
        assert first.status_code == 200, first.text
        listed = _listed_ids(first.text)
        assert listed and "#EXT-X-PART" not in first.text
        cache: BlurredCache = client.app.state.blurred_cache  # type: ignore[attr-defined]

        # No segment is requested: the newest listed one is blurred in the background all the same.
        with hub.ctx.db.session() as s:
            newest_listed = s.get(Segment, listed[-1])
            assert newest_listed is not None
            s.expunge(newest_listed)
        wait_for(lambda: cache.ready(newest_listed), 30, f"segment {listed[-1]} blurred ahead")

        # A segment published after that fetch is blurred too, while the view's lease holds (3 x 4 s),
        # found by the pool's own look at the camera before any player reloads the playlist.
        later = wait_for(lambda: (s if (s := _newest(hub, cam)).id > listed[-1] else None), 10,
                         "a segment published after the playlist fetch")
        wait_for(lambda: cache.ready(later), 11, f"segment {later.id}, published after the fetch, blurred ahead")

        # On the recorded timeline: a blurred segment starts where its source does, not at 0 (a player
        # would put every blurred segment over the first one).
        assert _first_pts(cache.path(later)) == _first_pts(hub.service_store_path(later)) > 0

        # The player's request then finds it made: served from the cache, not transcoded again.
        made = cache.path(later).stat().st_mtime_ns
        got = client.get(f"/api/cameras/{cam}/live/segments/{later.id}/media.m4s")
        assert got.status_code == 200 and got.content
        assert cache.path(later).stat().st_mtime_ns == made

        # Nobody opened the other camera's view: nothing of it was blurred.
        assert not (cache.root / str(hub.unwatched)).exists()
        assert not cache.making(_newest(hub, hub.unwatched))
