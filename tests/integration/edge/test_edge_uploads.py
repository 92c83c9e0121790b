"""The hub's upload service on SQLite and PostgreSQL, and the gateway's spool quota, with real files."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from civicam.auth import site_tokens
from civicam.context import Context, open_context
from civicam.domain.segments import segment_path
from civicam.edge.spool import Spool
from civicam.ingest.recorder import SegmentDone
from civicam.ingest.service import store_for
from civicam.ingest.upload_expiry import UploadExpiry, sweep_interval
from civicam.ingest.uploads import UploadError, UploadService, encode_metadata, segment_meta
from civicam.registry import service
from civicam.storage.models import EdgeUpload, Gap, Segment
from support.hub import ADMIN_PASSWORD, Api, make_settings
from support.sites import ACTOR
from support.sites import two_sites as sites

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


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


class Clock:
    """The service's clock, moved by the test (the expiry is an hour: nobody waits for it)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_abandoned_uploads_expire_with_their_bytes(ctx: Context) -> None:
    site_a, _ = sites(ctx)
    clock = Clock(datetime.now(UTC))
    store = store_for(ctx)
    svc = UploadService(ctx.db, store, expiry_s=3600, clock=clock)
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    body = bytes(range(256)) * 40
    old_meta, new_meta = (segment_meta(meta_for(cam, body, i)) for i in (0, 1))
    old = svc.create(site_a, old_meta, len(body))
    assert old.expires == clock.now + timedelta(hours=1)
    w = svc.appender(site_a, old.upload_id, 0)
    w.write(body[:1000])
    assert w.close() == (1000, None)
    old_file = Path(store.local_path(f"incoming/{old.upload_id}.upload"))
    assert old_file.stat().st_size == 1000

    clock.now += timedelta(minutes=59)
    fresh = svc.create(site_a, new_meta, len(body))  # created 59 minutes after the first
    assert svc.expire() == 0, "nothing is an hour old yet"
    assert svc.status(site_a, old.upload_id).offset == 1000

    clock.now += timedelta(minutes=2)  # the first is 61 minutes old, the second 2
    assert svc.expire() == 1
    assert not old_file.exists(), "its bytes are removed with it"
    with pytest.raises(UploadError) as gone:
        svc.status(site_a, old.upload_id)
    assert (gone.value.status, gone.value.code) == (404, "unknown_upload")
    assert svc.status(site_a, fresh.upload_id).offset == 0, "the younger upload is kept"
    # The gateway comes back with the segment: a new upload, from the first byte, and it completes.
    again = svc.create(site_a, old_meta, len(body))
    assert again.upload_id != old.upload_id and again.offset == 0
    w = svc.appender(site_a, again.upload_id, 0)
    w.write(body)
    offset, stored = w.close()
    assert offset == len(body) and stored is not None
    clock.now += timedelta(hours=2)
    assert svc.expire() == 1, "only the unfinished one expires; a stored segment never does"
    assert svc.create(site_a, old_meta, len(body)).stored_segment == stored


def test_upload_expires_header_and_expired_upload_found_late(sqlite_api: Api) -> None:
    """tus expiration over HTTP: creation and PATCH answers say when the unfinished upload is removed; one
    found after that time (before any sweep) starts afresh."""
    site_a, _ = sites(sqlite_api.ctx)
    admin = sqlite_api.login("admin", ADMIN_PASSWORD)
    c = sqlite_api.client
    token = c.post(f"/api/sites/{site_a}/token", json={"action": "issue"}, headers=admin).json()["token"]
    gw = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    cam = c.post("/api/edge/cameras", json={"name": "Door", "probe": {"verdict": "accepted"}}, headers=gw).json()
    body = b"\x01\x02" * 3000
    meta = {k: v for k, v in meta_for(cam["id"], body).items()}
    headers = {**gw, "Upload-Length": str(len(body)), "Upload-Metadata": encode_metadata(meta)}
    before = datetime.now(UTC).replace(microsecond=0)
    r = c.post("/api/edge/uploads", headers=headers)
    assert r.status_code == 201, r.text
    expires = parsedate_to_datetime(r.headers["Upload-Expires"])
    expiry = sqlite_api.ctx.settings.edge_upload_expiry_s
    assert before + timedelta(seconds=expiry) <= expires <= datetime.now(UTC) + timedelta(seconds=expiry)
    loc = r.headers["Location"]
    r = c.patch(loc, content=body[:100], headers={**gw, "Upload-Offset": "0",
                                                  "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204 and parsedate_to_datetime(r.headers["Upload-Expires"]) == expires
    head = c.head(loc, headers=gw)
    assert head.headers["Upload-Offset"] == "100" and parsedate_to_datetime(head.headers["Upload-Expires"]) == expires
    r = c.patch(loc, content=body[100:], headers={**gw, "Upload-Offset": "100",
                                                  "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204 and "Civicam-Stored" in r.headers and "Upload-Expires" not in r.headers

    # Expired but not swept yet: the creation finds it out of time and starts a new upload at offset 0.
    now = UploadService(sqlite_api.ctx.db, store_for(sqlite_api.ctx), expiry_s=3600)
    late = UploadService(sqlite_api.ctx.db, store_for(sqlite_api.ctx), expiry_s=3600,
                         clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    meta2 = segment_meta(meta_for(cam["id"], body, 1))
    first = now.create(site_a, meta2, len(body))
    w = now.appender(site_a, first.upload_id, 0)
    w.write(body[:10])
    w.close()
    assert now.create(site_a, meta2, len(body)) == first.__class__(first.upload_id, 10, None, first.expires)
    second = late.create(site_a, meta2, len(body))  # two hours later
    assert second.upload_id != first.upload_id and second.offset == 0
    assert not Path(store_for(sqlite_api.ctx).local_path(f"incoming/{first.upload_id}.upload")).exists()


@pytest.mark.parametrize("one_piece", [False, True], ids=["created_then_patched", "one_piece"])
def test_recorder_gaps_open_then_close_and_repeat_safely(ctx: Context, one_piece: bool) -> None:
    """A gateway's recorder gap (the camera lost) reaches the hub open, then closed; repeats are no-ops,
    a backlog segment from before the gap does not close it, one after does; the same whether the segments
    come as create + PATCH or in one request (its own statements, uploads.py ``_ARRIVAL``)."""
    site_a, site_b = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    lost, back = T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)
    gap_id = svc.gap(site_a, cam, lost, None, "connection reset", "stream_lost")
    assert svc.gap(site_a, cam, lost, None, "connection reset", "stream_lost") == gap_id
    with pytest.raises(UploadError) as other:
        svc.gap(site_b, cam, lost, None, "x", "stream_lost")
    assert other.value.code == "wrong_site"
    with pytest.raises(UploadError) as bad:
        svc.gap(site_a, cam, lost, None, "x", "made_up")
    assert bad.value.code == "bad_gap"

    def gap_rows() -> list[tuple[datetime, datetime | None, str]]:
        with ctx.db.session() as s:
            return [(g.start, g.end, g.reason) for g in s.execute(select(Gap).where(Gap.camera_id == cam)).scalars()]

    def upload(i: int) -> None:
        body = bytes([i]) * 500
        meta = segment_meta(meta_for(cam, body, i))
        if one_piece:
            incoming = svc.incoming(meta, len(body))
            incoming.write(body)
            assert svc.receive(site_a, meta, len(body), incoming)[2] is not None
            return
        up = svc.create(site_a, meta, len(body))
        w = svc.appender(site_a, up.upload_id, 0)
        w.write(body)
        assert w.close()[1] is not None

    upload(0)  # a backlog segment (0-2 s) from before the camera was lost
    assert gap_rows() == [(lost, None, "stream_lost")], "still open: the camera is still lost"
    upload(15)  # starts at 30 s, after the gap: it closes it there, as a pulled camera's next segment does
    assert gap_rows() == [(lost, back, "stream_lost")]
    # The gateway's own closing report (and its resend) finds the same gap.
    assert svc.gap(site_a, cam, lost, back, "connection reset", "stream_lost") == gap_id
    assert svc.gap(site_a, cam, lost, back, "connection reset", "stream_lost") == gap_id
    assert gap_rows() == [(lost, back, "stream_lost")]


def test_spool_recorder_gap_is_sent_open_then_closed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", quota_bytes=10**9, logger=logging.getLogger("test"))

    def record(i: int) -> None:
        start = T0 + timedelta(seconds=2 * i)
        rel = segment_path(1, start)
        Path(spool.store.spool(rel + ".partial")).write_bytes(bytes([i]) * 100)
        size = spool.store.publish(rel + ".partial", rel)
        spool.add(SegmentDone(1, rel, start, start + timedelta(seconds=2), size, 50, 1, 10, "h264", 1280, 720, "s"))

    record(0)
    lost = T0 + timedelta(seconds=2)
    spool.recorder_gap(1, lost, "stream_lost", "connection reset")
    spool.recorder_gap(1, lost + timedelta(seconds=1), "stream_lost", "again")  # one open gap: the first kept
    (path, gap), = spool.gaps(1)
    assert (gap.start, gap.end, gap.reason, gap.detail) == (lost, None, "stream_lost", "connection reset")
    spool.gap_sent(path, gap)
    assert spool.gaps(1) == [], "an open gap the hub knows of is not sent again"
    assert path.exists(), "but it is kept until its end is known"
    record(5)  # the camera is back: its first segment starts at 10 s
    (path2, closed), = spool.gaps(1)
    assert path2 == path and (closed.start, closed.end) == (lost, T0 + timedelta(seconds=10))
    spool.gap_sent(path, gap)  # a late answer to the open report does not drop the closed one
    assert spool.gaps(1) == [(path, closed)]
    spool.gap_sent(path, closed)
    assert spool.gaps(1) == [] and not path.exists()


def test_cached_token_revoked_elsewhere_is_refused_at_once(sqlite_api: Api) -> None:
    """The hub remembers resolved gateway tokens, but a revocation by another process (the CLI) holds at
    once for everything a gateway changes: creation, gaps, cameras and health re-check the token row."""
    site_a, _ = sites(sqlite_api.ctx)
    admin = sqlite_api.login("admin", ADMIN_PASSWORD)
    c = sqlite_api.client
    token = c.post(f"/api/sites/{site_a}/token", json={"action": "issue"}, headers=admin).json()["token"]
    gw = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    cam = c.post("/api/edge/cameras", json={"name": "Door", "probe": {"verdict": "accepted"}}, headers=gw).json()
    assert c.post("/api/edge/health", json={}, headers=gw).status_code == 200  # now cached
    cache = sqlite_api.client.app.state.site_token_cache
    assert cache.get(token) is not None
    with sqlite_api.ctx.db.session() as s:  # as `civicam site token SITE --revoke` does, in its own process
        assert site_tokens.revoke(s, ACTOR, site_a) == 1
    body = b"\x05" * 1000
    headers = {**gw, "Upload-Length": str(len(body)), "Upload-Metadata": encode_metadata(meta_for(cam["id"], body)),
               "Content-Type": "application/offset+octet-stream"}
    r = c.post("/api/edge/uploads", headers=headers, content=body)
    assert r.status_code == 401 and r.json()["code"] == "revoked" and r.headers["WWW-Authenticate"] == "Bearer"
    with sqlite_api.ctx.db.session() as s:
        assert s.execute(select(Segment)).first() is None, "nothing stored with the revoked token"
    assert cache.get(token) is None, "the cache forgot it"
    assert c.post("/api/edge/health", json={}, headers=gw).status_code == 401
    gap = {"camera_id": cam["id"], "start": T0.isoformat(), "reason": "stream_lost"}
    assert c.post("/api/edge/gaps", json=gap, headers=gw).status_code == 401


def test_token_cache_keys_expire_and_forget() -> None:
    now = [100.0]
    cache = site_tokens.TokenCache(ttl_s=10, clock=lambda: now[0])
    cache.put("cst_a", site_tokens.Resolved(1, 11))
    cache.put("cst_b", site_tokens.Resolved(2, 22))
    assert cache.get("cst_a") == site_tokens.Resolved(1, 11) and cache.get("cst_c") is None
    assert all(b"cst_a" not in k for k in cache._entries), "keyed hashes, not tokens, are held"
    cache.forget_token(11)
    assert cache.get("cst_a") is None and cache.get("cst_b") is not None
    now[0] += 10
    assert cache.get("cst_b") is None, "an entry lives ttl_s"


def test_segment_in_one_request_is_stored_once(api: Api) -> None:
    """tus creation-with-upload, the gateway's usual request: one POST stores and indexes the segment; sent
    again it is answered with the same segment; a body whose digest is wrong stores nothing and leaves the
    upload open at offset 0 for the bytes to come again."""
    site_a, _ = sites(api.ctx)
    admin = api.login("admin", ADMIN_PASSWORD)
    c = api.client
    token = c.post(f"/api/sites/{site_a}/token", json={"action": "issue"}, headers=admin).json()["token"]
    gw = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    cam = c.post("/api/edge/cameras", json={"name": "Door", "probe": {"verdict": "accepted"}}, headers=gw).json()["id"]
    body = hashlib.sha512(b"segment").digest() * 2000

    def post(i: int, content: bytes) -> Any:
        return c.post("/api/edge/uploads", content=content, headers={
            **gw, "Upload-Length": str(len(body)), "Upload-Metadata": encode_metadata(meta_for(cam, body, i)),
            "Content-Type": "application/offset+octet-stream"})

    r = post(0, body)
    assert r.status_code == 201 and r.headers["Upload-Offset"] == str(len(body)), r.text
    stored = int(r.headers["Civicam-Stored"])
    with api.ctx.db.session() as s:
        seg = s.execute(select(Segment).where(Segment.id == stored)).scalar_one()
        assert (seg.camera_id, seg.start, seg.bytes, seg.seq) == (cam, T0, len(body), 0)
        path = store_for(api.ctx).local_path(seg.path)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()
    again = post(0, body)
    assert again.status_code == 200 and int(again.headers["Civicam-Stored"]) == stored
    tampered = bytearray(body)
    tampered[7] ^= 1
    bad = post(1, bytes(tampered))
    assert bad.status_code == 460 and bad.json()["code"] == "digest_mismatch", bad.text
    with api.ctx.db.session() as s:
        (upload,) = s.execute(select(EdgeUpload).where(EdgeUpload.status == "open")).scalars()
        assert (upload.received_bytes, upload.segment_id) == (len(body), None)
        assert s.execute(select(Segment).where(Segment.start == T0 + timedelta(seconds=2))).first() is None
    loc = f"/api/edge/uploads/{upload.id}"
    assert c.head(loc, headers=gw).headers["Upload-Offset"] == "0"
    r = c.patch(loc, content=body, headers={**gw, "Upload-Offset": "0",
                                            "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204 and int(r.headers["Civicam-Stored"]) != stored


def test_the_hub_sweeps_abandoned_uploads_by_itself(sqlite_url: str, tmp_path: Path) -> None:
    """The background sweep (a service of ``civicam serve``) removes an upload once its expiry passed."""
    ctx = open_context(make_settings(tmp_path / "data", sqlite_url, edge_upload_expiry_s=1.0), create=True)
    sweep = UploadExpiry(ctx, logging.getLogger("test"))
    try:
        site_a, _ = sites(ctx)
        svc = UploadService(ctx.db, store_for(ctx), expiry_s=1.0)
        cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
        body = b"\x07" * 100
        up = svc.create(site_a, segment_meta(meta_for(cam, body)), len(body))
        w = svc.appender(site_a, up.upload_id, 0)
        w.write(body[:50])
        w.close()
        incoming = Path(store_for(ctx).local_path(f"incoming/{up.upload_id}.upload"))
        assert incoming.stat().st_size == 50
        assert sweep_interval(1.0) == 1.0 and sweep_interval(3600) == 60.0
        sweep.start()

        def gone() -> bool:
            with ctx.db.session() as s:
                return s.get(EdgeUpload, up.upload_id) is None and not incoming.exists()

        deadline = time.monotonic() + 20
        while not gone():  # polls the outcome (the expiry is a real second), no fixed sleep
            assert time.monotonic() < deadline, "the sweep removed the expired upload"
            time.sleep(0.1)
    finally:
        sweep.close()
        ctx.close()


def test_a_retry_waits_for_the_body_still_arriving(ctx: Context) -> None:
    """While a segment's first request is still receiving its body (no upload row yet), a retry of the same
    segment is told to wait (409 busy), so the bytes arriving are resumed from, not raced by a second upload."""
    site_a, _ = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    body = b"\x09" * 4000
    meta = segment_meta(meta_for(cam, body))
    arriving = svc.incoming(meta, len(body))
    arriving.write(body[:1500])  # ... and then the link breaks
    with pytest.raises(UploadError) as busy:
        svc.create(site_a, meta, len(body))
    assert (busy.value.status, busy.value.code) == (409, "busy")
    with pytest.raises(UploadError):
        svc.incoming(meta, len(body))
    created, offset, stored = svc.receive(site_a, meta, len(body), arriving)
    assert (offset, stored) == (1500, None)
    again = svc.create(site_a, meta, len(body))  # the retry now finds the upload at the bytes that came
    assert (again.upload_id, again.offset) == (created.upload_id, 1500)


def test_one_piece_refusals_store_nothing(ctx: Context) -> None:
    """A segment sent in one request is admitted like any other: another site's camera, an unknown camera, a
    view-only camera, a pulled camera and a revoked token are refused with their codes, and nothing is
    indexed; a segment the hub already holds is answered with it, another at the same start refused."""
    site_a, site_b = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    viewer = svc.register_camera(site_a, "Lobby", True, {"verdict": "accepted"})["id"]
    with ctx.db.session() as s:
        pulled = service.add_camera(s, ACTOR, ctx.secrets, site_a, "Pulled", "rtsp://127.0.0.1:1/x").id
        token = site_tokens.issue(s, ACTOR, site_a)
    body = b"\x05" * 3000

    def send(site: int, camera: int, token_id: int | None = None, content: bytes = body) -> tuple[int, int | None]:
        meta = segment_meta(meta_for(camera, content))
        incoming = svc.incoming(meta, len(content))
        incoming.write(content)
        try:
            _, offset, stored = svc.receive(site, meta, len(content), incoming, token_id)
        except BaseException:
            incoming.discard()  # as the router does
            raise
        return offset, stored

    for site, camera, token_id, code in ((site_b, cam, None, "wrong_site"), (site_a, 10_000, None, "wrong_site"),
                                         (site_a, viewer, None, "view_only"), (site_a, pulled, None, "not_edge")):
        with pytest.raises(UploadError) as refused:
            send(site, camera, token_id)
        assert refused.value.code == code, (camera, refused.value.code)
    offset, stored = send(site_a, cam, token.token_id)
    assert offset == len(body) and stored is not None
    assert send(site_a, cam, token.token_id) == (len(body), stored)  # sent again: the same segment
    with pytest.raises(UploadError) as other:
        send(site_a, cam, token.token_id, b"\x06" * 3000)
    assert (other.value.status, other.value.code) == (409, "conflict")
    with ctx.db.session() as s:
        site_tokens.revoke(s, ACTOR, site_a)
    with pytest.raises(UploadError) as revoked:
        send(site_a, cam, token.token_id)
    assert (revoked.value.status, revoked.value.code) == (401, "revoked")
    with ctx.db.session() as s:
        rows = s.execute(select(Segment.camera_id, Segment.bytes)).all()
        uploads = s.execute(select(EdgeUpload.camera_id, EdgeUpload.status)).all()
    assert rows == [(cam, len(body))] and uploads == [(cam, "done")]


def test_tus_discovery_says_what_the_hub_enforces(sqlite_api: Api) -> None:
    """OPTIONS (tus discovery) for the site's token only; its Tus-Max-Size is the size the hub refuses above, and
    each extension it names is answered (deferred length: a stream created; termination: DELETE ends it)."""
    site_a, _ = sites(sqlite_api.ctx)
    admin = sqlite_api.login("admin", ADMIN_PASSWORD)
    c = sqlite_api.client
    assert c.options("/api/edge/uploads").status_code == 401
    token = c.post(f"/api/sites/{site_a}/token", json={"action": "issue"}, headers=admin).json()["token"]
    gw = {"Authorization": f"Bearer {token}"}
    r = c.options("/api/edge/uploads", headers=gw)
    assert r.status_code == 204 and r.headers["Tus-Version"] == "1.0.0", r.text
    extensions = set(r.headers["Tus-Extension"].split(","))
    assert extensions == {"creation", "creation-with-upload", "creation-defer-length", "expiration", "termination"}
    largest = int(r.headers["Tus-Max-Size"])
    gw["Tus-Resumable"] = "1.0.0"
    cam = c.post("/api/edge/cameras", json={"name": "Door", "probe": {"verdict": "accepted"}}, headers=gw).json()["id"]
    meta = encode_metadata(meta_for(cam, b"x"))
    too_big = c.post("/api/edge/uploads", headers={**gw, "Upload-Length": str(largest + 1), "Upload-Metadata": meta})
    assert too_big.status_code == 413, too_big.text
    fits = c.post("/api/edge/uploads", headers={**gw, "Upload-Length": str(largest), "Upload-Metadata": meta})
    assert fits.status_code == 201 and "Upload-Expires" in fits.headers, fits.text
    assert c.delete(fits.headers["Location"], headers=gw).status_code == 204
    stream = c.post("/api/edge/uploads", headers={**gw, "Upload-Defer-Length": "1", "Upload-Metadata": encode_metadata(
        {"camera_id": cam, "start": (T0 + timedelta(seconds=60)).isoformat()})})
    assert stream.status_code == 201 and stream.headers["Upload-Defer-Length"] == "1", stream.text


def _batch_header(entries: list[tuple[dict[str, str], bytes]]) -> str:
    import base64
    import json

    return base64.b64encode(json.dumps([{"length": len(b), "metadata": encode_metadata(m)}
                                        for m, b in entries]).encode()).decode()


def test_a_batch_stores_each_segment_as_its_own_upload(api: Api) -> None:
    """``POST /api/edge/batches``: several segments in one body, each checked, stored and answered on its own:
    a good one stored with its digest, a tampered one refused (460) and left open at offset 0 for a resend, one
    of another site's camera refused (403) with nothing stored; sent again, the stored one is answered with
    the same segment. A malformed manifest is refused whole."""
    site_a, site_b = sites(api.ctx)
    admin = api.login("admin", ADMIN_PASSWORD)
    c = api.client
    tok_a = c.post(f"/api/sites/{site_a}/token", json={"action": "issue"}, headers=admin).json()["token"]
    tok_b = c.post(f"/api/sites/{site_b}/token", json={"action": "issue"}, headers=admin).json()["token"]
    gw_a, gw_b = ({"Authorization": f"Bearer {t}", "Tus-Resumable": "1.0.0"} for t in (tok_a, tok_b))
    cam = c.post("/api/edge/cameras", json={"name": "Door", "probe": {"verdict": "accepted"}},
                 headers=gw_a).json()["id"]
    hall = c.post("/api/edge/cameras", json={"name": "Hall", "probe": {"verdict": "accepted"}},
                  headers=gw_b).json()["id"]
    good = [hashlib.sha512(bytes([i])).digest() * (300 + 100 * i) for i in range(3)]
    tampered = bytearray(good[1])
    tampered[5] ^= 1
    entries = [(meta_for(cam, good[0], 0), good[0]), (meta_for(cam, good[1], 1), bytes(tampered)),
               (meta_for(hall, good[2], 2), good[2]), (meta_for(cam, good[2], 3), good[2])]

    def send(batch: list[tuple[dict[str, str], bytes]], gw: dict[str, str]) -> Any:
        return c.post("/api/edge/batches", content=b"".join(b for _, b in batch),
                      headers={**gw, "Civicam-Batch": _batch_header(batch), "Content-Type": "application/octet-stream"})

    r = send(entries, gw_a)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i.get("status") for i in items] == [None, 460, 403, None]
    assert items[1]["code"] == "digest_mismatch" and items[2]["code"] == "wrong_site"
    stored = [items[0]["stored"], items[3]["stored"]]
    assert all(isinstance(s, int) for s in stored) and items[0]["offset"] == len(good[0])
    with api.ctx.db.session() as s:
        segs = {seg.start: seg for seg in s.execute(select(Segment)).scalars()}
        assert sorted(segs) == [T0, T0 + timedelta(seconds=6)] and {seg.camera_id for seg in segs.values()} == {cam}
        for seg, body in ((segs[T0], good[0]), (segs[T0 + timedelta(seconds=6)], good[2])):
            path = store_for(api.ctx).local_path(seg.path)
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()
        (open_upload,) = s.execute(select(EdgeUpload).where(EdgeUpload.status == "open")).scalars()
        assert open_upload.start == T0 + timedelta(seconds=2)
    # The gateway's retry (tus, creation without a body) finds that upload at offset 0 and sends it again.
    retry = c.post("/api/edge/uploads", headers={**gw_a, "Upload-Length": str(len(good[1])),
                                                  "Upload-Metadata": encode_metadata(entries[1][0])})
    assert retry.status_code == 201 and retry.headers["Upload-Offset"] == "0", retry.text
    assert retry.headers["Location"] == f"/api/edge/uploads/{open_upload.id}"
    r = c.patch(retry.headers["Location"], content=good[1], headers={
        **gw_a, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204 and "Civicam-Stored" in r.headers
    again = send(entries[:1], gw_a).json()["items"]
    assert again[0]["stored"] == stored[0], "delivered twice, stored once"
    bad = c.post("/api/edge/batches", content=good[0], headers={
        **gw_a, "Civicam-Batch": _batch_header([(meta_for(cam, good[0], 9), good[0] + b"x")]),
        "Content-Type": "application/octet-stream"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_batch", bad.text
    assert c.post("/api/edge/batches", content=b"", headers={"Civicam-Batch": "W10="}).status_code == 401
    with api.ctx.db.session() as s:
        assert s.execute(select(Segment).where(Segment.start == T0 + timedelta(seconds=18))).first() is None


def test_a_batch_cut_short_keeps_what_arrived(ctx: Context) -> None:
    """The connection breaks in a batch's second segment (the router's ClientDisconnect path, run here at the
    service): the first is stored, the second kept as a tus upload at the bytes that came (the retry finds it
    and resumes), the third, never begun, not created; nothing is left behind on disk for it."""
    from civicam.ingest.batches import Splitter, receive_all

    site_a, _ = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    bodies = [bytes([i]) * (2000 + i) for i in range(3)]
    items = [(segment_meta(meta_for(cam, b, i)), len(b)) for i, b in enumerate(bodies)]
    incoming = [svc.incoming(m, n) for m, n in items]
    splitter = Splitter([n for _, n in items], incoming)
    splitter.write(bodies[0] + bodies[1][:700])  # ... and the link breaks
    results = receive_all(svc, site_a, items, incoming, None)
    first, second, third = results
    assert not isinstance(first, UploadError) and first[2] is not None
    assert not isinstance(second, UploadError) and (second[1], second[2]) == (700, None)
    assert isinstance(third, UploadError) and third.code == "not_received"
    retry = svc.create(site_a, items[1][0], items[1][1])
    assert (retry.upload_id, retry.offset) == (second[0].upload_id, 700)
    w = svc.appender(site_a, retry.upload_id, 700)
    w.write(bodies[1][700:])
    assert w.close()[1] is not None
    assert not Path(incoming[2].path).exists()
    created = svc.create(site_a, items[2][0], items[2][1])  # the third is sent anew, from nothing
    assert created.offset == 0
    with ctx.db.session() as s:
        assert sorted(seg.start for seg in s.execute(select(Segment)).scalars()) == [
            T0, T0 + timedelta(seconds=2)]


def _incoming_batch(svc: UploadService, cam: int, bodies: list[bytes], first: int = 0) -> tuple[Any, Any]:
    from civicam.ingest.batches import Splitter

    items = [(segment_meta(meta_for(cam, b, first + i)), len(b)) for i, b in enumerate(bodies)]
    incoming = [svc.incoming(m, n) for m, n in items]
    splitter = Splitter([n for _, n in items], incoming)
    splitter.write(b"".join(bodies))
    assert splitter.complete
    return items, incoming


def _stored_digests(ctx: Context) -> dict[datetime, str]:
    """What the recordings store holds, per segment start, by reading the files the index points at."""
    with ctx.db.session() as s:
        segs = s.execute(select(Segment.start, Segment.path)).all()
    return {start: hashlib.sha256(Path(store_for(ctx).local_path(path)).read_bytes()).hexdigest()
            for start, path in segs}


def test_a_batch_of_new_segments_is_one_commit(ctx: Context) -> None:
    """A batch's new segments are stored in one transaction (one commit, counted by the engine's own events),
    each answered, indexed once and readable with its digest; a tampered one in the same batch keeps its
    open upload at offset 0, and a repeat of the batch is answered from the hub's rows (no second copy)."""
    from sqlalchemy import event

    from civicam.ingest.batches import receive_all

    site_a, _ = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    bodies = [hashlib.sha512(bytes([i])).digest() * (40 + i) for i in range(4)]
    items, incoming = _incoming_batch(svc, cam, bodies)
    items[2] = (dataclasses.replace(items[2][0], sha256=hashlib.sha256(b"other").hexdigest()), items[2][1])
    commits: list[int] = []
    def count(conn: Any) -> None:
        commits.append(1)

    event.listen(ctx.db.engine, "commit", count)
    try:
        results = receive_all(svc, site_a, items, incoming, None)
    finally:
        event.remove(ctx.db.engine, "commit", count)
    assert len(commits) == 1, f"one commit for the batch, not {len(commits)}"
    assert [type(r).__name__ for r in results] == ["tuple", "tuple", "UploadError", "tuple"]
    assert isinstance(results[2], UploadError) and results[2].code == "digest_mismatch"
    held = _stored_digests(ctx)
    assert held == {items[i][0].start: hashlib.sha256(bodies[i]).hexdigest() for i in (0, 1, 3)}
    with ctx.db.session() as s:
        (open_row,) = s.execute(select(EdgeUpload).where(EdgeUpload.status == "open")).scalars()
        assert open_row.start == items[2][0].start
    assert svc.status(site_a, open_row.id)[0] == 0  # sent again from its first byte
    # The same batch again (the gateway never saw the answer): the stored ones answered with their segments.
    again_items, again_in = _incoming_batch(svc, cam, [bodies[0], bodies[1]])
    again = receive_all(svc, site_a, again_items, again_in, None)
    assert [r[2] for r in again if not isinstance(r, UploadError)] == [results[0][2], results[1][2]]
    assert _stored_digests(ctx) == held
    assert not any(Path(b.path).exists() for b in again_in), "repeated bytes are not kept"


def test_a_batch_racing_another_hub_process_loses_nothing(ctx: Context) -> None:
    """Another hub process (its own UploadService, its own connection) stores one of a batch's segments
    between the batch's check and its first INSERT: the shared transaction fails on the unique key, and each
    segment is then received on its own: the raced one answered with the other process's segment, the others
    stored, each start indexed once, no bytes left in the incoming folder."""
    from sqlalchemy import event

    from civicam.ingest.batches import receive_all

    site_a, _ = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    other = UploadService(ctx.db, store_for(ctx))  # the other process: its own in-memory state
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    bodies = [hashlib.sha512(bytes([i])).digest() * (30 + i) for i in range(3)]
    items, incoming = _incoming_batch(svc, cam, bodies)
    raced: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if raced or not statement.lstrip().upper().startswith("INSERT"):
            return
        raced.append(1)
        (meta, length), = items[:1]
        body = other.incoming(meta, length)
        body.write(bodies[0])
        raced.append(other.receive(site_a, meta, length, body)[2] or 0)

    event.listen(ctx.db.engine, "before_cursor_execute", before)
    try:
        results = receive_all(svc, site_a, items, incoming, None)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", before)
    assert len(raced) == 2 and raced[1] > 0, "the other process stored the first segment"
    assert not any(isinstance(r, UploadError) for r in results), results
    assert results[0][2] == raced[1], "the raced segment is answered with the one the other process stored"
    with ctx.db.session() as s:
        starts = [r.start for r in s.execute(select(Segment)).scalars()]
    assert sorted(starts) == [m.start for m, _ in items], "each start indexed once"
    sent = {m.start: hashlib.sha256(b).hexdigest() for (m, _), b in zip(items, bodies, strict=True)}
    assert _stored_digests(ctx) == sent
    left = list(Path(store_for(ctx).local_path("incoming")).glob("*"))
    assert left == [], left


def test_a_single_segment_racing_another_hub_process_is_told_to_retry(ctx: Context) -> None:
    """The same race for a segment sent in one request: the hub answers 409 busy (not a server error), keeps
    nothing of its own attempt, and the gateway's retry finds the segment the other process stored."""
    from sqlalchemy import event

    site_a, _ = sites(ctx)
    svc = UploadService(ctx.db, store_for(ctx))
    other = UploadService(ctx.db, store_for(ctx))
    cam = svc.register_camera(site_a, "Door", False, {"verdict": "accepted"})["id"]
    body = hashlib.sha512(b"x").digest() * 50
    meta = segment_meta(meta_for(cam, body))
    raced: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if raced or not statement.lstrip().upper().startswith("INSERT"):
            return
        raced.append(1)
        theirs = other.incoming(meta, len(body))
        theirs.write(body)
        raced.append(other.receive(site_a, meta, len(body), theirs)[2] or 0)

    mine = svc.incoming(meta, len(body))
    mine.write(body)
    event.listen(ctx.db.engine, "before_cursor_execute", before)
    try:
        with pytest.raises(UploadError) as busy:
            svc.receive(site_a, meta, len(body), mine)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", before)
    mine.discard()  # as the router does for a refused body
    assert (busy.value.status, busy.value.code) == (409, "busy")
    assert len(raced) == 2 and raced[1] > 0
    assert svc.create(site_a, meta, len(body)).stored_segment == raced[1], "the retry finds the stored segment"
    assert _stored_digests(ctx) == {meta.start: meta.sha256}
    assert list(Path(store_for(ctx).local_path("incoming")).glob("*")) == []
