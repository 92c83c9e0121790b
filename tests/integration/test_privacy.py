"""Faces are blurred in served and exported video by default; unblurred needs the permission and a reason.

The oracle is independent of the face detector: the test composes a clip in which it knows every face's
true box in every frame (masked and unmasked faces, 24-200 px, moving), serves it through the hub, decodes
what the hub serves and exports, and checks inside each true box whether the face is still recognisable
against the source (support.faces.recognisable). Blurred: none may be. Unblurred (permission and reason):
nearly all must be, which also shows that the oracle can tell.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from civicam.api.app import create_app
from civicam.audit.log import Actor
from civicam.auth.users import create_user
from civicam.context import Context, open_context
from civicam.db.models import AuditEvent
from civicam.demo_media import portrait
from civicam.domain.segments import segment_path
from civicam.ingest.service import store_for
from civicam.live.playback import run_export
from civicam.live.serving import live_blur_hub
from civicam.registry import service
from civicam.storage.reconcile import reconcile
from support.faces import (
    FPS,
    Box,
    Image,
    Walker,
    decode,
    faces,
    record_live,
    share_recognisable,
    shared_available,
    walkers_clip,
)
from support.hub import ACTOR, make_settings

T0 = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
SECONDS = 2
SIZES = (24, 32, 48, 72, 110, 160, 200)


def _walkers() -> list[Walker]:
    """One face per lane, top to bottom 24-200 px high, masked and unmasked alternating, each moving at
    its own speed (up to 8 px a frame, a brisk walk across a 1280 px corridor). The dataset's real faces
    where ../shared is here, the public-domain portrait (bare, and with a drawn mask) always."""
    pool: list[Image] = []
    for k, size in enumerate(SIZES):
        masked = k % 2 == 1
        if shared_available() and k < 5:
            pool += faces(1, size, masked, source="dataset")
        else:
            face = portrait(masked)
            pool.append(np.ascontiguousarray(cv2.resize(face, (round(face.shape[1] * size / face.shape[0]), size))))
    out, y = [], 4
    for k, face in enumerate(pool):
        vx = (-1) ** k * (2 + k)
        x = 60 + 90 * k if vx > 0 else 1180 - face.shape[1] - 40 * k
        out.append(Walker(face, x, y, vx, 0))
        y += face.shape[0] + 10
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory,
        module_db_url: str) -> Iterator[tuple[Context, list[Image], list[list[Box]]]]:
    """The hub on SQLite, and on PostgreSQL for the test whose grants and audit live in the database."""
    root = tmp_path_factory.mktemp("privacy")
    ctx = open_context(make_settings(root / "data", module_db_url), create=True)
    with ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        site = service.add_site(s, ACTOR, region, "Mall", "Ana", "ana@mall.example")
        cam = service.add_camera(s, ACTOR, ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door")
        cam.status = "accepted"
        create_user(s, "op", "Operator-Passw0rd", "operator")
        create_user(s, "investigator", "Investig8-Passw0rd", "operator", view_unblurred=True)
    store = store_for(ctx)
    path = Path(store.spool(segment_path(1, T0)))
    truth = walkers_clip(path, _walkers(), SECONDS)
    sources = decode(path)  # the recorded frames: what the camera sent, after its own encoding
    assert reconcile(ctx.db, store, logging.getLogger("test")).indexed == 1
    yield ctx, sources, truth
    ctx.close()


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
    # (The media playlist's URI is relative, "live/media.m3u8...": a live view's segments are fetched as live
    # ones, since a live grant does not open playback.)
    mode = "live/" if media_uri.startswith("live/") or "/live" in media_uri else "playback/"
    init = client.get(base + mode + init_uri, headers=headers)
    body = client.get(base + mode + seg_uri, headers=headers)
    assert init.status_code == 200 and body.status_code == 200, body.text
    return init.content + body.content


def _left(served: list[Image], sources: list[Image], truth: list[list[Box]], min_px: int = 24) -> float:
    """Share of true face boxes >= ``min_px`` high still recognisable in ``served`` (aligned on the first
    frame)."""
    n = min(len(served), len(sources))
    share, checked = share_recognisable(sources[:n], served[:n], truth[:n], min_px)
    assert checked >= n * len([s for s in SIZES if s >= min_px]) * 0.9
    return share


def _hidden(served: list[Image], sources: list[Image], truth: list[list[Box]]) -> None:
    """Every face from 24 px up is hidden in every frame. (The detector misses the 24 px face of this clip
    in 4 of 50 frames; it stays blurred because a face lost while in view is carried along its motion,
    live/cover.py: before that, 1.1 % of the boxes >= 24 px were left recognisable.)"""
    assert _left(served, sources, truth, 24) == 0.0


def _login(client: TestClient, user: str, password: str) -> dict[str, str]:
    r = client.post("/api/auth/token", json={"username": user, "password": password})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _blurred_live(client: TestClient, headers: dict[str, str], rendition: str) -> bytes:
    """The first complete segment of the blurred live view (init section and its parts, by byte range),
    following the playlist with blocking reloads as a low-latency player does."""
    q = "" if rendition == "full" else f"?rendition={rendition}"
    master = client.get(f"/api/cameras/1/live.m3u8{q}", headers=headers)
    assert master.status_code == 200 and 'VALUE="true"' in master.text, master.text
    media_uri = "/api/cameras/1/" + [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")][0]
    deadline = time.monotonic() + 120
    text = ""
    while "#EXTINF" not in text:
        assert time.monotonic() < deadline, text
        if "#EXTM3U" not in text:
            reply = client.get(media_uri, headers=headers)  # first fetch: starts the pipeline, waits a while
        else:
            parts = [ln for ln in text.splitlines() if ln.startswith("#EXT-X-PART:")]
            seq = int(text.split("#EXT-X-MEDIA-SEQUENCE:", 1)[1].split()[0])
            sep = "&" if "?" in media_uri else "?"
            reply = client.get(f"{media_uri}{sep}_HLS_msn={seq}&_HLS_part={len(parts)}", headers=headers)
        # 503 while the pipeline starts (its detector loads, a loaded machine): a player retries too.
        assert reply.status_code == 200 or (reply.status_code == 503 and "starting" in reply.text), reply.text
        text = reply.text
    lines = text.splitlines()
    segment = lines[:[i for i, ln in enumerate(lines) if ln.startswith("#EXTINF")][0] + 3]
    uris = {ln.split('URI="', 1)[1].split('"', 1)[0] for ln in segment if 'URI="' in ln}
    assert uris == {segment[-1]} and segment[-1].startswith(f"blurred/{rendition}/"), text  # one blurred file
    ranges = [ln.split('BYTERANGE="', 1)[1].split('"', 1)[0] for ln in segment if "#EXT-X-MAP" in ln]
    ranges += [segment[-2].split(":", 1)[1]]  # EXT-X-BYTERANGE of the whole segment after its init
    body = b""
    for rng in ranges:
        n, off = (int(x) for x in rng.split("@"))
        got = client.get(f"/api/cameras/1/live/{segment[-1]}",
                         headers={**headers, "Range": f"bytes={off}-{off + n - 1}"})
        assert got.status_code == 206 and len(got.content) == n
        body += got.content
    return body


def _upscaled(frames: list[Image]) -> list[Image]:
    """Frames of a lower rendition at the source's size, so the true boxes apply."""
    return [f if f.shape[:2] == (720, 1280) else cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR)
            for f in frames]


@pytest.mark.timeout(400)
def test_live_view_is_blurred_and_unblurred_needs_permission_and_reason(
        hub: tuple[Context, list[Image], list[list[Box]]]) -> None:
    hub_ctx, sources, truth = hub
    clip = Path(store_for(hub_ctx).local_path(segment_path(1, T0)))
    done = threading.Event()
    # The live segment is written now (the pipeline follows the camera's folders of the current hour).
    live_start = datetime.now(UTC).replace(microsecond=0)
    writer = threading.Thread(target=record_live,
                              args=(store_for(hub_ctx), clip, live_start, timedelta(seconds=SECONDS + 1), done))
    with TestClient(create_app(hub_ctx), base_url="http://127.0.0.1") as client:
        op = _login(client, "op", "Operator-Passw0rd")
        inv = _login(client, "investigator", "Investig8-Passw0rd")
        # Two viewers open the blurred view and the wall before the camera's segment starts, and keep
        # watching (each player renews its pipeline's lease with its playlist fetches).
        pipes = live_blur_hub(client.app.state, hub_ctx, store_for(hub_ctx))  # the app's own pipelines

        def viewers() -> None:
            while not done.wait(1.0):
                for rendition in ("full", "wall"):
                    pipes.watch(1, rendition)

        for rendition in ("full", "wall"):
            pipes.watch(1, rendition)
        watching = threading.Thread(target=viewers)
        watching.start()
        writer.start()
        try:
            # The blurred live view (low-latency parts, blurred as they are recorded) and the camera
            # wall's 640x360 rendition: no face recognisable in what they serve.
            served = _blurred_live(client, op, "full")
            blurred = decode(served)
            assert len(blurred) == FPS * SECONDS
            _hidden(blurred, sources, truth)
            wall = decode(_blurred_live(client, op, "wall"))
            assert len(wall) == FPS * SECONDS and wall[0].shape[:2] == (360, 640)
            _hidden(_upscaled(wall), sources, truth)
            # Even the permitted user gets the blurred bytes unless they state a reason.
            assert _blurred_live(client, inv, "full") == served
        finally:
            done.set()
            writer.join()
            watching.join()
        # The oracle can tell at the wall's size: the unblurred picture scaled down and up keeps the faces.
        scaled = _upscaled([cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in sources])
        assert _left(scaled, sources, truth, 32) >= 0.9
        # Asking is not enough: no permission, or no reason, and the answer is no.
        assert client.get("/api/cameras/1/live.m3u8", params={"unblurred_reason": "curious"},
                          headers=op).status_code == 403
        assert client.get("/api/cameras/1/live.m3u8", params={"unblurred_reason": "  "},
                          headers=inv).status_code == 400
        clear = decode(_served(client, inv, "/api/cameras/1/live.m3u8?unblurred_reason=incident%2042"))
        assert _left(clear, sources, truth) >= 0.95
        # A grant is bound to its user: another user's fetch with it is refused.
        master = client.get("/api/cameras/1/live.m3u8", params={"unblurred_reason": "incident 42"}, headers=inv)
        grant_uri = [ln for ln in master.text.splitlines() if "grant=" in ln][0]
        assert client.get(f"/api/cameras/1/{grant_uri}", headers=op).status_code == 403
        tampered = grant_uri[:-3] + "AAA"
        assert client.get(f"/api/cameras/1/{tampered}", headers=inv).status_code == 403
        q = {"from": T0.isoformat(), "to": datetime(2026, 11, 22, 3, 0, 2, tzinfo=UTC).isoformat()}
        playback = _served(client, op, "/api/cameras/1/playback.m3u8?" + "&".join(
            f"{k}={v.replace('+', '%2B')}" for k, v in q.items()))
        _hidden(decode(playback), sources, truth)  # playback: whole segments, blurred on request
    with hub_ctx.db.session() as s:
        views = s.execute(select(AuditEvent).where(AuditEvent.action.in_(["live.view", "playback.view"]))).scalars()
        details = [(e.actor, e.detail["blurred"], e.detail.get("unblurred_reason")) for e in views]
    assert ("investigator", False, "incident 42") in details
    assert ("op", True, None) in details and all(b for a, b, _ in details if a == "op")


@pytest.mark.timeout(400)
# Blurring an export does not depend on the database (the live test covers PostgreSQL): SQLite only.
@pytest.mark.parametrize("module_db_url", ["sqlite"], indirect=True)
def test_exports_are_blurred_unless_permitted_with_a_reason(
        hub: tuple[Context, list[Image], list[list[Box]]], tmp_path: Path) -> None:
    hub_ctx, sources, truth = hub
    end = datetime(2026, 11, 22, 3, 0, 2, tzinfo=UTC)
    store = store_for(hub_ctx)
    plain = run_export(hub_ctx.db, store, tmp_path, ACTOR, 1, T0, end, "incident 7")
    assert plain.path is not None
    frames = decode(plain.path)
    assert len(frames) >= FPS * SECONDS - 1
    _hidden(frames, sources, truth)
    investigator = Actor(name="investigator", source="pytest", role="operator", view_unblurred=True)
    clear = run_export(hub_ctx.db, store, tmp_path, investigator, 1, T0, end, "incident 7", "court order 7")
    assert clear.path is not None and clear.export["unblurred"] is True
    assert _left(decode(clear.path), sources, truth) >= 0.95
