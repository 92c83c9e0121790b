"""The operators' dashboard in a real browser (Debian chromium via Playwright) against a real hub.

One hub and one browser for the module; the tests run in order and build on each other (onboarded
camera -> live view -> playback -> export -> the auditor sees those views), which keeps the module fast.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from civicam.db.base import utcnow
from civicam.db.models import Camera

pytestmark = [pytest.mark.browser, pytest.mark.rtsp, pytest.mark.slow]
Shot = Callable[..., Path]


def onboard(page: Any, hub: Any, name: str, url: str) -> None:
    page.goto(f"{hub.url}/onboard")
    page.get_by_label("Site").select_option(str(hub.ids["site_a"]))
    page.get_by_label("Camera name").fill(name)
    page.get_by_label("Stream address").fill(url)
    page.get_by_role("button", name="Add and probe").click()
    # Done when a verdict shows, or when the wizard reports an error (then the assertion below says which).
    page.wait_for_function("""() => document.getElementById('verdict').textContent ||
        document.querySelector('#probe-status.error, #add-msg.error')""", timeout=60_000)
    status = page.locator("#add-msg").inner_text() + " / " + page.get_by_test_id("probe-status").inner_text()
    assert page.get_by_test_id("verdict").inner_text() in ("accepted", "rejected"), status


def test_sign_in_rejects_a_wrong_password_then_signs_in(browser: Any, hub: Any, sign_in: Any, screenshot: Shot) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{hub.url}/cameras/{hub.ids['other_camera']}")
    assert "/login" in page.url  # pages need a session
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_test_id("login-error").inner_text() == "Wrong username or password."
    screenshot(page, "login")
    context.close()

    page = sign_in("admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "civicam_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time() + 3600
    assert page.get_by_test_id("whoami").inner_text().startswith("admin")
    assert "Riverside" in page.get_by_test_id("regions").inner_text()
    # A cookie-authenticated change without the CSRF header is refused by the hub.
    status = page.evaluate("""async () => (await fetch('/api/users', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({username: 'csrf-victim', password: 'Xx-passw0rd!1', role: 'operator'})})).status""")
    assert status == 403


def test_wizard_accepts_a_good_camera_and_rejects_a_small_one(hub: Any, sign_in: Any, rtsp_server: Any,
                                                              screenshot: Shot) -> None:
    page = sign_in("admin")
    onboard(page, hub, "Entrance north", rtsp_server.url("/good"))
    assert page.get_by_test_id("verdict").inner_text() == "accepted"
    screenshot(page, "onboard-accepted")
    hub.ids["good"] = int(page.locator("#camera-link").get_attribute("href").rsplit("/", 1)[1])

    onboard(page, hub, "Old car park", rtsp_server.url("/small"))
    assert page.get_by_test_id("verdict").inner_text() == "rejected"
    reasons = page.get_by_test_id("reasons")
    reason = reasons.locator("li[data-code=resolution_too_low]")
    assert "640" in reason.inner_text() and "What to fix" in reason.inner_text()
    screenshot(page, "onboard-rejected", full_page=True)
    hub.ids["small"] = int(page.locator("#camera-link").get_attribute("href").rsplit("/", 1)[1])


def test_site_rep_sees_only_their_own_site(hub: Any, sign_in: Any, screenshot: Shot) -> None:
    page = sign_in("rep")
    sites = page.get_by_test_id("sites").inner_text()
    assert "Central Mall" in sites and "Station Hall" not in sites
    page.goto(f"{hub.url}/cameras/{hub.ids['other_camera']}")
    assert page.get_by_test_id("error-page").is_visible()
    assert "404" in page.locator("h1").inner_text() and "not found" in page.get_by_test_id("error-page").inner_text()
    screenshot(page, "site-rep-404")
    page.goto(f"{hub.url}/sites/{hub.ids['site_b']}")
    assert page.get_by_test_id("error-page").is_visible()
    page.goto(f"{hub.url}/audit")
    assert "403" in page.locator("h1").inner_text()
    page.goto(f"{hub.url}/cameras/{hub.ids['small']}")  # their own site's camera: the probe report and advice
    assert "resolution_too_low" in page.locator("ul.reasons").inner_text()


UNBLUR_REASON = "e2e: checking the entrance after an incident report"


def test_live_view_plays_and_a_past_minute_plays_back(hub: Any, sign_in: Any, screenshot: Shot) -> None:
    # An operator with view_unblurred who states a reason: the hub then remuxes instead of blurring, which a
    # shared 2-core test box can do in real time for 720p (the blurred path is exercised on the wall below).
    page = sign_in("viewer")
    page.goto(f"{hub.url}/cameras/{hub.ids['good']}")
    assert page.get_by_test_id("blur-badge").is_hidden()  # nothing plays (or is audited) until asked
    page.get_by_text("View unblurred…").click()
    page.get_by_label("Stated reason (recorded in the audit log)").fill(UNBLUR_REASON)
    page.get_by_role("button", name="Show unblurred").click()
    # The recorder needs its first segments; the player retries by itself until they exist.
    page.wait_for_function("() => document.querySelector('#player').currentTime > 1", timeout=60_000)
    t1 = page.evaluate("document.querySelector('#player').currentTime")
    page.wait_for_function(f"() => document.querySelector('#player').currentTime > {t1} + 1", timeout=20_000)
    assert page.get_by_test_id("blur-badge").inner_text() == "not blurred"
    assert "unblurred" in (page.get_by_test_id("player-mode").text_content() or "")
    page.get_by_role("button", name="Refresh").click()
    page.locator("#timeline .rec").first.wait_for()
    screenshot(page, "camera-live")

    # Click on the recorded part of the timeline: one minute of playback from that moment.
    timeline = page.get_by_test_id("timeline")
    timeline.scroll_into_view_if_needed()
    tl, rec = timeline.bounding_box(), page.locator("#timeline .rec").first.bounding_box()
    timeline.click(position={"x": rec["x"] - tl["x"] + rec["width"] * 0.3, "y": tl["height"] / 2})
    page.get_by_test_id("player-mode").filter(has_text="playback").wait_for()
    page.wait_for_function("() => document.querySelector('#player').dataset.state === 'playing' && "
                           "document.querySelector('#player').currentTime > 0.5", timeout=30_000)
    screenshot(page, "camera-playback")


def test_export_a_clip_with_a_reason(hub: Any, sign_in: Any, screenshot: Shot) -> None:
    page = sign_in("viewer")  # still on the camera page, with the unblurred reason stated there
    assert f"/cameras/{hub.ids['good']}" in page.url
    assert page.locator("#exp-from").input_value()  # prefilled from the recording
    page.get_by_label("Reason (required, audited)").fill("e2e test: incident review #42")
    page.get_by_role("button", name="Export").click()
    link = page.get_by_test_id("export-download")
    link.wait_for(timeout=60_000)
    with page.expect_download() as dl:
        link.click()
    assert dl.value.suggested_filename.endswith(".mp4")
    screenshot(page, "camera-export", full_page=True)
    page.goto(f"{hub.url}/")  # leave the camera page: its players stop


def test_wall_tile_plays_blurred_says_when_its_stream_is_lost_and_recovers(
        hub: Any, sign_in: Any, rtsp_available: bool, screenshot: Shot) -> None:
    from support.rtsp import RtspServer
    from support.services import require

    require(rtsp_available, "GStreamer RTSP server (python3-gi + gir1.2-gst-rtsp-server-1.0)")
    # A camera of its own, small enough for the hub to blur in real time on a shared box, that the test can
    # unplug and plug back in. It sits at the second site so the wall (filtered by site) shows only it.
    flaky = RtspServer([{"path": "/flaky", "source": "test", "width": 320, "height": 240, "fps": 5, "codec": "h264",
                         "bitrate_kbps": 200, "pattern": "ball", "shared": True}])
    flaky.start()
    cid = None
    try:
        with hub.ctx.db.session() as s:  # accepted directly: the wizard is not the subject here
            cam = Camera(site_id=hub.ids["site_b"], name="Loading dock", url=flaky.url("/flaky"), status="accepted")
            s.add(cam)
            s.flush()
            cid = cam.id
        page = sign_in("admin")
        page.goto(f"{hub.url}/wall?n=4&site_id={hub.ids['site_b']}")
        video = f"document.querySelector(\".tile[data-camera='{cid}'] video\")"
        tile = page.locator(f".tile[data-camera='{cid}']")
        page.wait_for_function(f"() => {video}.currentTime > 0.5", timeout=60_000)
        assert tile.locator("[data-blur]").inner_text() == "blurred"
        tile.locator("[data-health]").filter(has_text="online").wait_for()
        assert "1–1 of 1" in page.get_by_test_id("pager-page").inner_text()
        screenshot(page, "wall")
        flaky.stop()
        tile.locator("[data-state]").filter(has_text="Stream lost").wait_for(timeout=40_000)
        screenshot(page, "wall-stream-lost")
        flaky.start()
        page.wait_for_function(f"() => {video}.dataset.state === 'playing' && {video}.currentTime > 0.5",
                               timeout=60_000)
        t = page.evaluate(f"{video}.currentTime")
        page.wait_for_function(f"() => {video}.currentTime > {t} + 0.5", timeout=20_000)
        page.goto(f"{hub.url}/")
    finally:
        flaky.stop()
        if cid is not None:
            with hub.ctx.db.session() as s:  # stop the recorder from chasing it for the rest of the module
                s.get(Camera, cid).status = "disabled"


def test_compliance_chart_and_alert_acknowledgement(hub: Any, sign_in: Any, screenshot: Shot) -> None:
    from civicam.analytics.records import Alert, AlertRule, PeopleCount

    now = utcnow().replace(minute=0, second=0, microsecond=0)
    with hub.ctx.db.session() as s:  # what the analytics pipeline would have counted (numbers only)
        for h in range(1, 9):
            s.add(PeopleCount(camera_id=hub.ids["good"], bucket_start=now - timedelta(hours=h), people=40 + h,
                              masked=30 + h, unmasked=8, unknown=2))
        rule = AlertRule(name="Mall under 80%", site_id=hub.ids["site_a"], threshold=0.8, window_minutes=60,
                         min_people=20, enabled=True)
        s.add(rule)
        s.flush()
        s.add(Alert(rule_id=rule.id, site_id=hub.ids["site_a"], window_start=now - timedelta(hours=1),
                    window_end=now, people=48, compliance=0.7, threshold=0.8, state="open"))
    page = sign_in("admin")
    page.goto(f"{hub.url}/sites/{hub.ids['site_a']}")
    page.wait_for_function("() => Number(document.querySelector('#chart-hour').dataset.points || 0) > 0")
    assert "compliance" in page.get_by_test_id("chart-msg").inner_text()
    page.get_by_test_id("site-alerts").filter(has_text="open").wait_for()
    assert "Dana Contact" in page.get_by_test_id("contact").inner_text()
    screenshot(page, "site")

    page.goto(f"{hub.url}/alerts")
    row = page.locator("#alert-rows tr").first
    row.wait_for()
    row.get_by_role("button", name="Acknowledge").click()
    page.locator("#alerts-msg").filter(has_text="acknowledged").wait_for()
    page.get_by_label("State").select_option("acknowledged")
    page.get_by_role("button", name="Filter").click()
    page.locator("#alert-rows tr").filter(has_text="acknowledged by admin").wait_for()
    screenshot(page, "alerts")


def test_users_page_creates_a_user(hub: Any, sign_in: Any, screenshot: Shot) -> None:
    page = sign_in("admin")
    page.goto(f"{hub.url}/users")
    assert page.get_by_label("Site (site representatives only)").is_disabled()
    page.get_by_label("Username").fill("mall.rep2")
    page.get_by_label("Initial password").fill("Mall-rep2-passw0rd")
    page.get_by_label("Role").select_option("site_rep")
    page.get_by_label("Site (site representatives only)").select_option(str(hub.ids["site_a"]))
    page.get_by_role("button", name="Create user").click()
    page.locator("#user-msg").filter(has_text="User mall.rep2 created").wait_for()
    assert "mall.rep2" in page.get_by_test_id("users").inner_text()
    # A failure is explained: the same name again.
    page.get_by_label("Username").fill("mall.rep2")
    page.get_by_label("Initial password").fill("Mall-rep2-passw0rd")
    page.get_by_label("Role").select_option("operator")
    page.get_by_role("button", name="Create user").click()
    page.locator("#user-msg").filter(has_text="already exists").wait_for()
    screenshot(page, "users")


def test_auditor_sees_the_views_just_made(hub: Any, sign_in: Any, screenshot: Shot) -> None:
    page = sign_in("auditor")
    page.goto(f"{hub.url}/audit?q=view")
    assert "Chain verified" in page.get_by_test_id("chain").inner_text()
    log = page.get_by_test_id("audit").inner_text()
    assert "live.view" in log and "playback.view" in log and "viewer" in log and UNBLUR_REASON in log
    page.goto(f"{hub.url}/audit?q=export")
    assert "e2e test: incident review #42" in page.get_by_test_id("audit").inner_text()
    page.goto(f"{hub.url}/audit")
    screenshot(page, "audit")
    page.goto(f"{hub.url}/cameras/{hub.ids['good']}")  # auditors have no video: no player on the page
    assert page.locator("#player").count() == 0


def test_overview_paginates_ten_thousand_cameras(hub: Any, sign_in: Any, screenshot: Shot) -> None:
    from civicam.audit.log import Actor
    from civicam.registry import service

    with hub.ctx.db.session() as s:
        region = service.find_region(s, hub.ids["region"])
        site = service.add_site(s, Actor(name="e2e-setup", source="pytest"), region, "Bulk depot", "Bo Contact",
                                "bo@depot.example")
        # Never 'accepted': the recorder would try to record them all.
        statuses = ("pending", "rejected", "disabled")
        s.execute(insert(Camera), [
            {"site_id": site.id, "name": f"bulk-{i:05d}", "url": f"rtsp://192.0.2.1/{i}", "status": statuses[i % 3],
             "created_at": utcnow()} for i in range(10_000)])
    page = sign_in("admin")
    t0 = time.monotonic()
    page.goto(f"{hub.url}/")
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0, f"overview with 10,000 cameras took {elapsed:.1f} s"
    pager = page.get_by_test_id("pager-page")
    with hub.ctx.db.session() as s:
        total = s.execute(select(func.count()).select_from(Camera)).scalar_one()
    assert total > 10_000
    assert f"1–50 of {total}" in pager.inner_text() and f"page 1 of {-(-total // 50)}" in pager.inner_text()
    assert page.get_by_test_id("cameras").locator("tbody tr").count() == 50
    screenshot(page, "overview", full_page=False)
    pager.get_by_role("link", name="Next").click()
    assert f"page 2 of {-(-total // 50)}" in page.get_by_test_id("pager-page").inner_text()
    # Filters and search stay server-side and fast.
    page.get_by_label("Search").fill("bulk-0999")
    page.get_by_label("Camera status").select_option("rejected")
    t0 = time.monotonic()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"q=bulk-0999"))
    assert time.monotonic() - t0 < 5.0
    rows = page.get_by_test_id("cameras").locator("tbody tr")
    assert rows.count() >= 1 and all("rejected" in t for t in rows.all_inner_texts())


def test_no_page_broke_the_content_security_policy(hub: Any, sign_in: Any) -> None:
    """Run last: every page above played, charted and posted under the hub's strict CSP."""
    page = sign_in("admin")
    response = page.goto(f"{hub.url}/")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    assert page.evaluate("() => window.self === window.top")
    assert hub.state.get("csp", []) == []
