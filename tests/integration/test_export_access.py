"""Who may read and download an export: its creator and admins; unblurred ones only with view_unblurred.

Export ids are sequential, so anyone else is told 404, as if the export did not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from civicam.auth.users import create_user
from civicam.db.models import AuditEvent
from civicam.registry import service
from civicam.storage.models import Export
from support.hub import ACTOR, ADMIN_PASSWORD, Api

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _export(api: Api, tmp_path: Path, camera_id: int, by: str, unblurred: bool) -> int:
    clip = tmp_path / f"clip-{by}-{unblurred}.mp4"
    clip.write_bytes(b"\0\0\0\x18ftypisom" + b"\0" * 16)
    with api.ctx.db.session() as s:
        exp = Export(camera_id=camera_id, start=T0, end=T0 + timedelta(minutes=1), reason="incident 4",
                     requested_by=by, status="done", path=str(clip), bytes=clip.stat().st_size, unblurred=unblurred)
        s.add(exp)
        s.flush()
        return exp.id


# (who asks, which export, allowed): creators and admins; unblurred needs the requester's view_unblurred.
CASES = [
    ("investigator", "unblurred", True),     # its creator, with view_unblurred
    ("investigator2", "unblurred", False),   # view_unblurred, but not the creator
    ("op", "unblurred", False),              # an operator who did not make it
    ("admin", "unblurred", False),           # an admin without view_unblurred
    ("boss", "unblurred", True),             # an admin with view_unblurred
    ("rep", "unblurred", False),             # the site's representative (export rights at that site)
    ("op", "blurred", True),                 # its creator
    ("investigator", "blurred", False),      # another operator, even with view_unblurred
    ("rep", "blurred", False),
    ("rep2", "blurred", False),              # another site's representative: not even the camera is seen
    ("admin", "blurred", True),
    ("lapsed", "lapsed", False),             # the creator of an unblurred export who lost view_unblurred
]


def test_exports_are_served_to_their_creator_and_admins_only(sqlite_api: Api, tmp_path: Path) -> None:
    api = sqlite_api
    with api.ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, api.ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door").id
        site_id = site.id
        other_site = service.add_site(s, ACTOR, region, "Station", "Bo", "bo@station.example").id
        create_user(s, "boss", "Boss-Passw0rd-1", "admin", view_unblurred=True)
    headers = {
        "admin": api.login("admin", ADMIN_PASSWORD),
        "boss": api.login("boss", "Boss-Passw0rd-1"),
        "investigator": api.user("investigator", "operator", view_unblurred=True),
        "investigator2": api.user("investigator2", "operator", view_unblurred=True),
        "op": api.user("op", "operator"),
        "rep": api.user("rep", "site_rep", site_id=site_id),
        "lapsed": api.user("lapsed", "operator"),
        "rep2": api.user("rep2", "site_rep", site_id=other_site),
    }
    ids = {"unblurred": _export(api, tmp_path, cam, "investigator", True),
           "blurred": _export(api, tmp_path, cam, "op", False),
           "lapsed": _export(api, tmp_path, cam, "lapsed", True)}
    for who, which, allowed in CASES:
        status = api.client.get(f"/api/exports/{ids[which]}", headers=headers[who])
        download = api.client.get(f"/api/exports/{ids[which]}/download", headers=headers[who])
        expected = 200 if allowed else 404
        assert (status.status_code, download.status_code) == (expected, expected), (who, which)
        if allowed:
            assert download.content.startswith(b"\0\0\0\x18ftyp")
        else:  # told nothing: the same answer as for an export that does not exist
            assert download.json() == status.json() == {"detail": f"Export {ids[which]} not found."}
    with api.ctx.db.session() as s:  # each download served is audited, who and which
        got = s.execute(select(AuditEvent.actor, AuditEvent.detail).where(
            AuditEvent.action == "recording.export.download")).tuples().all()
    served = sorted((who, ids[which]) for who, which, allowed in CASES if allowed)
    assert sorted((actor, d["export_id"]) for actor, d in got) == served


@pytest.mark.parametrize("which", ["status", "download"])
def test_an_unknown_export_is_404(sqlite_api: Api, which: str) -> None:
    admin = sqlite_api.login("admin", ADMIN_PASSWORD)
    path = "/api/exports/42" + ("/download" if which == "download" else "")
    assert sqlite_api.client.get(path, headers=admin).status_code == 404
