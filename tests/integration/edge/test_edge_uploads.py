"""The hub's upload service on SQLite and PostgreSQL, and the gateway's spool quota, with real files."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from civicam.audit.log import Actor
from civicam.auth import site_tokens
from civicam.context import Context
from civicam.domain.segments import segment_path
from civicam.edge.spool import Spool
from civicam.ingest.recorder import SegmentDone
from civicam.ingest.service import store_for
from civicam.ingest.uploads import UploadError, UploadService, segment_meta
from civicam.registry import service
from civicam.storage.models import Gap, Segment
from support.hub import ADMIN_PASSWORD, Api

ACTOR = Actor(name="test", source="pytest", role="admin")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def sites(ctx: Context) -> tuple[int, int]:
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        a = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@x.example")
        b = service.add_site(s, ACTOR, region, "Station", "Bo", "bo@x.example")
        return a.id, b.id


def meta_for(cam: int, body: bytes, i: int = 0) -> dict[str, str]:
    start = T0 + timedelta(seconds=2 * i)
    return {"camera_id": str(cam), "start": start.isoformat(), "end": (start + timedelta(seconds=2)).isoformat(),
            "sha256": hashlib.sha256(body).hexdigest(), "seq": str(i), "frames": "50", "keyframes": "1",
            "init_bytes": "10", "codec": "h264", "width": "1280", "height": "720", "session": "s"}


def test_upload_resumes_is_idempotent_and_refuses(ctx: Context) -> None:
    site_a, site_b = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    accepted = {"verdict": "accepted", "measured": {"width": 1280}, "reasons": []}
    cam = svc.register_camera(site_a, "Door", False, accepted)
    assert cam["status"] == "accepted" and cam["next_seq"] == 0
    assert svc.register_camera(site_a, "Door", False, accepted)["id"] == cam["id"]  # a re-report, same camera
    body = bytes(range(256)) * 40
    meta = segment_meta(meta_for(cam["id"], body))

    with pytest.raises(UploadError) as other:
        svc.create(site_b, meta, len(body))
    assert (other.value.status, other.value.code) == (403, "wrong_site")

    created = svc.create(site_a, meta, len(body))
    assert created.offset == 0 and created.stored_segment is None
    w = svc.appender(site_a, created.upload_id, 0)
    w.write(body[:3000])
    assert w.close() == (3000, None)  # a connection that broke after 3000 bytes: they are kept
    again = svc.create(site_a, meta, len(body))  # the gateway retries from scratch: it finds the upload
    assert (again.upload_id, again.offset) == (created.upload_id, 3000)
    with pytest.raises(UploadError) as stale:
        svc.appender(site_a, created.upload_id, 0)
    assert stale.value.code == "offset_mismatch"
    w = svc.appender(site_a, created.upload_id, 3000)
    w.write(body[3000:])
    offset, stored = w.close()
    assert offset == len(body) and stored is not None
    with ctx.db.session() as s:
        seg = s.execute(select(Segment).where(Segment.id == stored)).scalar_one()
        assert seg.start == T0 and seg.bytes == len(body)
        path = store_for(ctx).local_path(seg.path)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == meta.sha256
    # Delivered again (the gateway died before it saw the answer): stored once, the same segment answered.
    assert svc.create(site_a, meta, len(body)).stored_segment == stored
    # The same key with other bytes is a conflict, never a second copy.
    with pytest.raises(UploadError) as conflict:
        svc.create(site_a, segment_meta(meta_for(cam["id"], b"other")), 5)
    assert conflict.value.code == "conflict"

    # A digest mismatch stores nothing and lets the segment be sent again from the start.
    bad = segment_meta(meta_for(cam["id"], body, 1))
    up = svc.create(site_a, bad, len(body))
    w = svc.appender(site_a, up.upload_id, 0)
    w.write(b"\0" * len(body))
    with pytest.raises(UploadError) as mismatch:
        w.close()
    assert (mismatch.value.status, mismatch.value.code) == (460, "digest_mismatch")
    assert svc.status(site_a, up.upload_id)[0] == 0
    with ctx.db.session() as s:
        assert s.execute(select(Segment).where(Segment.start == bad.start)).first() is None


def test_gap_reports_merge_and_repeat_safely(ctx: Context) -> None:
    site_a, _ = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    t = [T0 + timedelta(seconds=2 * i) for i in range(6)]
    first = svc.gap(site_a, cam, t[0], t[2], "quota")
    assert svc.gap(site_a, cam, t[0], t[2], "quota") == first  # resent: no second gap
    assert svc.gap(site_a, cam, t[2], t[4], "quota") == first  # adjacent: one gap
    svc.gap(site_a, cam, t[5], t[5] + timedelta(seconds=1), "quota")
    with ctx.db.session() as s:
        gaps = [(g.start, g.end) for g in s.execute(select(Gap).order_by(Gap.start)).scalars()]
    assert gaps == [(t[0], t[4]), (t[5], t[5] + timedelta(seconds=1))]


def test_site_tokens_rotate_and_revoke(ctx: Context) -> None:
    site_a, _ = sites(ctx)
    with ctx.db.session() as s:
        first = site_tokens.issue(s, ACTOR, site_a)
    with ctx.db.session() as s, pytest.raises(site_tokens.SiteTokenError, match="rotate"):
        site_tokens.issue(s, ACTOR, site_a)
    with ctx.db.session() as s:
        second = site_tokens.issue(s, ACTOR, site_a, rotate=True)
    with ctx.db.session() as s:
        assert site_tokens.site_for_token(s, first.token) is None
        row = site_tokens.site_for_token(s, second.token)
        assert row is not None and row.site_id == site_a
        assert site_tokens.revoke(s, ACTOR, site_a) == 1
    with ctx.db.session() as s:
        assert site_tokens.site_for_token(s, second.token) is None


def test_spool_quota_drops_oldest_and_merges_one_gap(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", quota_bytes=3500, logger=logging.getLogger("test"))
    done = []
    for i in range(6):
        start = T0 + timedelta(seconds=2 * i)
        rel = segment_path(1, start)
        Path(spool.store.spool(rel + ".partial")).write_bytes(bytes([i]) * 1000)
        size = spool.store.publish(rel + ".partial", rel)
        done.append(spool.add(SegmentDone(1, rel, start, start + timedelta(seconds=2), size, 50, 1, 10, "h264",
                                          1280, 720, "s")))
    kept = spool.pending(1)
    assert [k.seq for k in kept] == [3, 4, 5] and spool.used() <= 3500
    (path, gap), = spool.gaps(1)
    assert (gap.start, gap.end) == (done[0].start, done[2].end)
    spool.gap_sent(path, gap)
    assert spool.gaps(1) == []
    # A restart finds what waits (sidecars) and continues the sequence.
    again = Spool(tmp_path / "spool", quota_bytes=3500, logger=logging.getLogger("test"))
    assert again.recover() == 0
    assert [k.seq for k in again.pending(1)] == [3, 4, 5]
    assert again._take_seq(1) == 6


def test_token_api_and_site_page(sqlite_api: Api) -> None:
    """The dashboard's site page drives the same token API: admins issue/rotate/revoke, operators may not."""
    site_a, _ = sites(sqlite_api.ctx)
    admin = sqlite_api.login("admin", ADMIN_PASSWORD)
    c = sqlite_api.client
    r = c.post(f"/api/sites/{site_a}/token", json={"action": "issue"}, headers=admin)
    assert r.status_code == 200 and r.json()["token"].startswith("cst_")
    assert c.post(f"/api/sites/{site_a}/token", json={"action": "issue"}, headers=admin).status_code == 409
    rotated = c.post(f"/api/sites/{site_a}/token", json={"action": "rotate"}, headers=admin).json()["token"]
    gw = {"Authorization": f"Bearer {rotated}"}
    assert c.post("/api/edge/health", json={"spool_bytes": 5}, headers=gw).status_code == 200
    old = {"Authorization": f"Bearer {r.json()['token']}"}
    assert c.post("/api/edge/health", json={}, headers=old).status_code == 401
    status = c.get(f"/api/sites/{site_a}/gateway", headers=admin).json()
    assert status["enrolled"] and status["health"] == {"spool_bytes": 5} and status["last_contact"]
    operator = sqlite_api.user("op", "operator")
    assert c.post(f"/api/sites/{site_a}/token", json={"action": "revoke"}, headers=operator).status_code == 403
    assert c.post(f"/api/sites/{site_a}/token", json={"action": "revoke"}, headers=admin).json()["revoked"] == 1
    assert c.post("/api/edge/health", json={}, headers=gw).status_code == 401
    # A gateway camera marked view-only shows so on the site page.
    UploadService(sqlite_api.ctx.db, store_for(sqlite_api.ctx)).register_camera(site_a, "Lobby", True,
                                                                                {"verdict": "accepted"})
    r = c.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get(f"/sites/{site_a}")
    assert page.status_code == 200, page.text
    assert 'data-testid="view-only"' in page.text and "Site gateway" in page.text
