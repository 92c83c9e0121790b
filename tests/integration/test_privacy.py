"""Faces are blurred in served and exported video by default; unblurred needs the permission and a reason.

Frames are decoded from what the hub actually serves and searched with the face detector: nothing may be
found in the blurred path, while the permitted unblurred path still shows the faces.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from civicam.analytics.faces import create_detector
from civicam.api.app import create_app
from civicam.audit.log import Actor
from civicam.auth.users import create_user
from civicam.context import Context, open_context
from civicam.db.models import AuditEvent
from civicam.domain.segments import segment_path
from civicam.ingest.service import store_for
from civicam.live.playback import run_export
from civicam.registry import service
from civicam.storage.reconcile import reconcile
from support.faces import FPS, face_clip, visible_faces
from support.hub import ACTOR, make_settings

T0 = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
SECONDS = 2


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Context:
    root = tmp_path_factory.mktemp("privacy")
    ctx = open_context(make_settings(root / "data", f"sqlite:///{root / 'civicam.db'}"), create=True)
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door")
        cam.status = "accepted"
        create_user(s, "op", "Operator-Passw0rd", "operator")
        create_user(s, "investigator", "Investig8-Passw0rd", "operator", view_unblurred=True)
    store = store_for(ctx)
    face_clip(Path(store.spool(segment_path(1, T0))), visible_faces(2), SECONDS)
    assert reconcile(ctx.db, store, logging.getLogger("test")).indexed == 1
    return ctx


def _served(client: TestClient, headers: dict[str, str], master_url: str) -> bytes:
    """The init section and first media segment a player gets when it opens ``master_url``."""
    master = client.get(master_url, headers=headers)
    assert master.status_code == 200, master.text
    media_uri = [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")][0]
    base = master_url.rsplit("/", 1)[0] + "/"
    media = client.get(base + media_uri, headers=headers)
    assert media.status_code == 200, media.text
    lines = media.text.splitlines()
    init_uri = [ln.split('"')[1] for ln in lines if ln.startswith("#EXT-X-MAP")][0]
    seg_uri = [ln for ln in lines if ln and not ln.startswith("#")][0]
    mode = "live/" if "/live" in media_uri else "playback/"
    init = client.get(base + mode + init_uri, headers=headers)
    body = client.get(base + mode + seg_uri, headers=headers)
    assert init.status_code == 200 and body.status_code == 200, body.text
    return init.content + body.content


def _frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data), format="mp4") as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def _frames_with_faces(frames: list[np.ndarray]) -> int:
    det = create_detector()
    return sum(1 for f in frames if len(det.detect(f)))


def _login(client: TestClient, user: str, password: str) -> dict[str, str]:
    r = client.post("/api/auth/token", json={"username": user, "password": password})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.timeout(400)
def test_live_view_is_blurred_and_unblurred_needs_permission_and_reason(hub: Context) -> None:
    with TestClient(create_app(hub), base_url="http://127.0.0.1") as client:
        op = _login(client, "op", "Operator-Passw0rd")
        inv = _login(client, "investigator", "Investig8-Passw0rd")
        served = _served(client, op, "/api/cameras/1/live.m3u8")
        blurred = _frames(served)
        assert len(blurred) == FPS * SECONDS
        assert _frames_with_faces(blurred) == 0
        # Asking is not enough: no permission, or no reason, and the answer is no.
        assert client.get("/api/cameras/1/live.m3u8", params={"unblurred_reason": "curious"},
                          headers=op).status_code == 403
        assert client.get("/api/cameras/1/live.m3u8", params={"unblurred_reason": "  "},
                          headers=inv).status_code == 400
        # Even the permitted user gets the blurred bytes unless they state a reason.
        assert _served(client, inv, "/api/cameras/1/live.m3u8") == served
        clear = _frames(_served(client, inv, "/api/cameras/1/live.m3u8?unblurred_reason=incident%2042"))
        assert _frames_with_faces(clear) >= len(clear) * 0.8
        # A grant is bound to its user: another user's fetch with it is refused.
        master = client.get("/api/cameras/1/live.m3u8", params={"unblurred_reason": "incident 42"}, headers=inv)
        grant_uri = [ln for ln in master.text.splitlines() if "grant=" in ln][0]
        assert client.get(f"/api/cameras/1/{grant_uri}", headers=op).status_code == 403
        tampered = grant_uri[:-3] + "AAA"
        assert client.get(f"/api/cameras/1/{tampered}", headers=inv).status_code == 403
        q = {"from": T0.isoformat(), "to": datetime(2026, 11, 22, 3, 0, 2, tzinfo=UTC).isoformat()}
        playback = _served(client, op, "/api/cameras/1/playback.m3u8?" + "&".join(
            f"{k}={v.replace('+', '%2B')}" for k, v in q.items()))
        assert playback == served  # playback serves the same blurred segment
    with hub.db.session() as s:
        views = s.execute(select(AuditEvent).where(AuditEvent.action.in_(["live.view", "playback.view"]))).scalars()
        details = [(e.actor, e.detail["blurred"], e.detail.get("unblurred_reason")) for e in views]
    assert ("investigator", False, "incident 42") in details
    assert ("op", True, None) in details and all(b for a, b, _ in details if a == "op")


@pytest.mark.timeout(400)
def test_exports_are_blurred_unless_permitted_with_a_reason(hub: Context, tmp_path: Path) -> None:
    end = datetime(2026, 11, 22, 3, 0, 2, tzinfo=UTC)
    store = store_for(hub)
    plain = run_export(hub.db, store, tmp_path, ACTOR, 1, T0, end, "incident 7")
    assert plain.path is not None
    with av.open(str(plain.path)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) >= FPS * SECONDS - 1 and _frames_with_faces(frames) == 0
    investigator = Actor(name="investigator", source="pytest", role="operator", view_unblurred=True)
    clear = run_export(hub.db, store, tmp_path, investigator, 1, T0, end, "incident 7", "court order 7")
    assert clear.path is not None and clear.export["unblurred"] is True
    with av.open(str(clear.path)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert _frames_with_faces(frames) >= len(frames) * 0.8
