"""Fixtures for the dashboard's browser tests: a real hub over HTTP on 127.0.0.1 and Debian's chromium.

The hub runs in-process (uvicorn in a thread, recording service on) on a free port with a temporary
data directory, so the tests can seed the database directly where the UI is not the subject (10,000
cameras, analytics counts). Readiness is awaited by polling ``/healthz`` against a deadline.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from civicam.api.app import create_app
from civicam.audit.log import Actor
from civicam.auth.users import create_user
from civicam.config.settings import get_settings
from civicam.context import Context, open_context
from civicam.registry import service
from support.services import require
from support.web import browser_sign_in, free_port, wait_healthy

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
ADMIN_PASSWORD = "Adm1n-web-pass"
SETUP = Actor(name="e2e-setup", source="pytest", role="admin")
PASSWORDS = {"admin": ADMIN_PASSWORD, "rep": "Rep-web-passw0rd", "auditor": "Aud-web-passw0rd",
             "viewer": "View-web-passw0rd"}


@dataclass
class Hub:
    url: str
    ctx: Context
    ids: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    app: Any = None  # the ASGI app, for a test that serves it on a second (TLS) port too


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    import uvicorn

    data = tmp_path_factory.mktemp("web-hub")
    # Recording on (live view, playback, export need it) and quick to notice cameras and reconnect; the face
    # analytics pipeline off (too heavy for a shared 2-core box; the charts' counts are seeded instead).
    settings = get_settings(data_dir=data, database_url=f"sqlite:///{data / 'civicam.db'}", probe_seconds=2.0,
                            probe_timeout_s=5.0, analytics={"enabled": False})
    ctx = open_context(settings, create=True)
    ids: dict[str, int] = {}
    with ctx.db.session() as s:
        region = service.add_region(s, SETUP, "Riverside")
        site_a = service.add_site(s, SETUP, region, "Central Mall", "Dana Contact", "dana@mall.example",
                                  "+1 555 0100")
        site_b = service.add_site(s, SETUP, region, "Station Hall", "Sam Contact", "sam@station.example")
        other = service.add_camera(s, SETUP, ctx.secrets, site_b.id, "Station platform", "rtsp://127.0.0.1:9/none")
        create_user(s, "admin", ADMIN_PASSWORD, "admin")
        create_user(s, "rep", PASSWORDS["rep"], "site_rep", site_a.id)
        create_user(s, "auditor", PASSWORDS["auditor"], "auditor")
        create_user(s, "viewer", PASSWORDS["viewer"], "operator", view_unblurred=True)
        ids.update(region=region.id, site_a=site_a.id, site_b=site_b.id, other_camera=other.id)
    port = free_port()
    app = create_app(ctx, with_services=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="web-hub", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url, 20, thread.is_alive):
        server.should_exit = True
        pytest.fail("the hub did not answer /healthz within 20 s")
    try:
        yield Hub(url, ctx, ids, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        ctx.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(os.path.exists(CHROMIUM), f"Debian chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def sign_in(browser: Any, hub: Hub) -> Iterator[Callable[[str], Any]]:
    """``sign_in(user)`` -> a page signed in as that user through the sign-in form (one context per user)."""
    pages: dict[str, Any] = {}
    contexts = []

    def open_as(user: str) -> Any:
        if user in pages:
            return pages[user]
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        # Every Content-Security-Policy violation any page of the module causes (test_dashboard.py's last
        # test asserts there were none: the dashboard works under the hub's CSP).
        page.on("console", lambda msg: hub.state.setdefault("csp", []).append(f"{user}: {msg.text}")
                if "Content Security Policy" in msg.text else None)
        browser_sign_in(page, hub.url, user, PASSWORDS[user])
        pages[user] = page
        return page

    yield open_as
    for c in contexts:
        c.close()


def shot(page: Any, name: str, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture(scope="session")
def screenshot() -> Callable[..., Path]:
    return shot
