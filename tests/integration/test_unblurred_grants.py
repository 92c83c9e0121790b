"""An unblurred grant opens what its view was opened for and nothing else; the audit log says exactly what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from civicam.db.models import AuditEvent
from civicam.domain.segments import partial_path, published_path
from civicam.ingest.recorder import SegmentDone
from civicam.ingest.service import store_for
from civicam.registry import service
from civicam.storage.index import add_segment
from support.hub import ACTOR, Api

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=3)
INIT = 8
SEG_S = 4


def _camera(api: Api) -> int:
    with api.ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, api.ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door")
        cam.status = "accepted"
        return cam.id


def _segment(api: Api, cam: int, start: datetime) -> int:
    store = store_for(api.ctx)
    with api.ctx.db.session() as s:
        part = partial_path(cam, start)
        with open(store.spool(part), "wb") as fh:
            fh.write(b"I" * INIT + b"M" * 100)
        final = published_path(part)
        store.publish(part, final)
        row = add_segment(s, SegmentDone(cam, final, start, start + timedelta(seconds=SEG_S), 108, 100, 1, INIT,
                                         "h264", 1280, 720, "s"))
        s.flush()
        return row.id


def _grant(text: str) -> str:
    return text.split("grant=", 1)[1].split()[0].split("&")[0]


def _views(api: Api, action: str) -> list[dict[str, object]]:
    with api.ctx.db.session() as s:
        return [e.detail for e in s.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()]


def test_a_live_grant_opens_the_live_window_and_not_past_segments(sqlite_api: Api) -> None:
    api = sqlite_api
    cam = _camera(api)
    old = _segment(api, cam, OLD)
    window = [_segment(api, cam, NOW - timedelta(seconds=SEG_S * i)) for i in range(4, 0, -1)]
    inv = api.user("investigator", "operator", view_unblurred=True)
    master = api.client.get(f"/api/cameras/{cam}/live.m3u8", params={"unblurred_reason": "incident 12"}, headers=inv)
    assert master.status_code == 200, master.text
    grant = _grant(master.text)

    def fetch(mode: str, seg: int) -> int:
        return api.client.get(f"/api/cameras/{cam}/{mode}/segments/{seg}/media.m4s", params={"grant": grant},
                              headers=inv).status_code

    assert [fetch("live", s) for s in window] == [200] * 4
    assert fetch("live", old) == 403  # three days back: not part of this live view
    assert fetch("playback", old) == 403 and fetch("playback", window[-1]) == 403  # nor any playback
    t0 = (OLD - timedelta(minutes=1)).isoformat()
    t1 = (OLD + timedelta(minutes=1)).isoformat()
    r = api.client.get(f"/api/cameras/{cam}/playback/media.m3u8", params={"from": t0, "to": t1, "grant": grant},
                       headers=inv)
    assert r.status_code == 403
    (view,) = _views(api, "live.view")
    window_start = NOW - timedelta(seconds=SEG_S * 4)
    assert view["unblurred_reason"] == "incident 12" and view["blurred"] is False
    assert datetime.fromisoformat(str(view["from"])) == window_start
    assert datetime.fromisoformat(str(view["to"])) > NOW


def test_a_past_interval_needs_its_own_reason_and_its_grant_covers_that_interval_only(sqlite_api: Api) -> None:
    api = sqlite_api
    cam = _camera(api)
    old = _segment(api, cam, OLD)
    later = _segment(api, cam, OLD + timedelta(hours=2))
    inv = api.user("investigator", "operator", view_unblurred=True)
    t0, t1 = OLD - timedelta(minutes=1), OLD + timedelta(minutes=1)
    params = {"from": t0.isoformat(), "to": t1.isoformat()}
    master = api.client.get(f"/api/cameras/{cam}/playback.m3u8", params={**params, "unblurred_reason": "case 9"},
                            headers=inv)
    assert master.status_code == 200, master.text
    grant = _grant(master.text)
    url = f"/api/cameras/{cam}/playback/segments/{{}}/media.m4s"
    clear = api.client.get(url.format(old), params={"grant": grant}, headers=inv)
    assert clear.status_code == 200 and clear.content == b"M" * 100  # the recorded bytes, not a blurred copy
    assert api.client.get(url.format(later), params={"grant": grant}, headers=inv).status_code == 403
    media = f"/api/cameras/{cam}/playback/media.m3u8"
    assert api.client.get(media, params={**params, "grant": grant}, headers=inv).status_code == 200
    wider = {"from": t0.isoformat(), "to": (t1 + timedelta(hours=3)).isoformat(), "grant": grant}
    assert api.client.get(media, params=wider, headers=inv).status_code == 403
    # The live view is a view of its own: a playback grant does not open it.
    assert api.client.get(f"/api/cameras/{cam}/live/media.m3u8", params={"grant": grant},
                          headers=inv).status_code == 403
    (view,) = _views(api, "playback.view")
    assert view["unblurred_reason"] == "case 9"
    assert (datetime.fromisoformat(str(view["from"])), datetime.fromisoformat(str(view["to"]))) == (t0, t1)


def test_playback_playlists_are_capped_at_a_day(sqlite_api: Api) -> None:
    api = sqlite_api
    cam = _camera(api)
    _segment(api, cam, OLD)
    viewer = api.user("viewer", "operator")
    year = {"from": (OLD - timedelta(days=365)).isoformat(), "to": (OLD + timedelta(minutes=1)).isoformat()}
    for path in ("playback.m3u8", "playback/media.m3u8"):
        r = api.client.get(f"/api/cameras/{cam}/{path}", params=year, headers=viewer)
        assert r.status_code == 400 and "24 hours" in r.json()["detail"]
    day = {"from": (OLD - timedelta(hours=23)).isoformat(), "to": (OLD + timedelta(minutes=1)).isoformat()}
    assert api.client.get(f"/api/cameras/{cam}/playback.m3u8", params=day, headers=viewer).status_code == 200
