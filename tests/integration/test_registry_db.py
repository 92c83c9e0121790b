"""Registry and audit persistence, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from civicam.audit.log import verify_log
from civicam.context import Context
from civicam.db.models import AuditEvent, Camera
from civicam.registry import service
from support.hub import ACTOR


def _site(ctx: Context) -> int:
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        return service.add_site(s, ACTOR, region, "Mall", "Ana Contact", "ana@mall.example", "+1 555 0101").id


def test_camera_credentials_are_encrypted_and_moved_out_of_the_url(ctx: Context) -> None:
    site_id = _site(ctx)
    with ctx.db.session() as s:
        cam = service.add_camera(s, ACTOR, ctx.secrets, site_id, "Door", "rtsp://cam:S3cr3t-pw@127.0.0.1:8554/door")
        cid = cam.id
    with ctx.db.session() as s:
        cam = s.get(Camera, cid)
        assert cam is not None
        assert cam.url == "rtsp://127.0.0.1:8554/door"
        assert cam.status == "pending"
        assert service.credentials(ctx.secrets, cam) == ("cam", "S3cr3t-pw")
        raw = s.execute(text("SELECT username_enc, password_enc, url FROM cameras")).one()
        assert b"S3cr3t-pw" not in bytes(raw[1]) and b"cam" != bytes(raw[0])
        # Nothing in the audit trail holds the secret either.
        details = s.execute(text("SELECT detail FROM audit_events")).scalars().all()
        assert all("S3cr3t-pw" not in str(d) for d in details)


def test_query_credentials_are_encrypted_and_moved_out_of_the_url(ctx: Context) -> None:
    site_id = _site(ctx)
    given = "http://10.0.0.5/videostream.cgi?user=admin&PWD=Qu3ry-S3cret&rate=0"
    with ctx.db.session() as s:
        cam = service.add_camera(s, ACTOR, ctx.secrets, site_id, "Door", given)
        cid = cam.id
    with ctx.db.session() as s:
        cam = s.get(Camera, cid)
        assert cam is not None
        assert cam.url == "http://10.0.0.5/videostream.cgi?rate=0"
        assert cam.has_credentials
        # What the recorder and the probe open: the credentials put back, from the encrypted column.
        assert service.stream_url(ctx.secrets, cam) == "http://10.0.0.5/videostream.cgi?rate=0&user=admin&PWD=Qu3ry-S3cret"
        raw = s.execute(text("SELECT url, query_secrets_enc FROM cameras")).one()
        assert "Qu3ry-S3cret" not in raw[0] and b"Qu3ry-S3cret" not in bytes(raw[1])
        details = s.execute(select(AuditEvent.detail)).scalars().all()
        assert all("Qu3ry-S3cret" not in str(d) and "admin" not in str(d) for d in details)
        assert [d["has_credentials"] for d in details if "has_credentials" in d] == [True]


@pytest.mark.parametrize(
    ("url", "words"),
    [("ftp://127.0.0.1/x", "Unsupported scheme"), ("rtsp://", "no host"), ("rtsp://h:99999/x", "malformed"),
     ("not a url", "whitespace"), ("", "empty")],
)
def test_malformed_urls_are_refused_and_nothing_is_stored(ctx: Context, url: str, words: str) -> None:
    site_id = _site(ctx)
    with pytest.raises(service.RegistryError, match=words), ctx.db.session() as s:
        service.add_camera(s, ACTOR, ctx.secrets, site_id, "Bad", url)
    with ctx.db.session() as s:
        assert service.list_cameras(s, ACTOR)[1] == 0


def test_duplicates_and_bad_contacts_are_refused(ctx: Context) -> None:
    site_id = _site(ctx)
    with ctx.db.session() as s:
        service.add_camera(s, ACTOR, ctx.secrets, site_id, "Door", "rtsp://127.0.0.1/a")
    with pytest.raises(service.RegistryError, match="already exists"), ctx.db.session() as s:
        service.add_camera(s, ACTOR, ctx.secrets, site_id, "Door", "rtsp://127.0.0.1/b")
    with pytest.raises(service.RegistryError, match="email"), ctx.db.session() as s:
        region = service.find_region(s, "North")
        service.add_site(s, ACTOR, region, "Station", "Bo", "not-an-email")
    with pytest.raises(service.RegistryError, match="already exists"), ctx.db.session() as s:
        service.add_region(s, ACTOR, "North")


def test_audit_chain_detects_edit_and_delete_in_the_database(ctx: Context) -> None:
    _site(ctx)
    with ctx.db.session() as s:
        count, problems = verify_log(s)
    assert count == 2 and problems == []
    with ctx.db.session() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 1"))
    with ctx.db.session() as s:
        _, problems = verify_log(s)
    assert [p.id for p in problems] == [1]
    with ctx.db.session() as s:
        s.execute(text("UPDATE audit_events SET actor = 'test' WHERE id = 1"))
        s.execute(text("DELETE FROM audit_events WHERE id = 2"))
    with ctx.db.session() as s:
        _, problems = verify_log(s)
    assert problems and "ends at 1" in problems[0].message


def test_concurrent_audit_writers_keep_one_chain(ctx: Context) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def add(i: int) -> None:
        with ctx.db.session() as s:
            service.add_region(s, ACTOR, f"Region {i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(24)))
    with ctx.db.session() as s:
        count, problems = verify_log(s)
    assert count == 24 and problems == []
