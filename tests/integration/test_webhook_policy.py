"""Webhook URLs: internal addresses refused when a rule is saved and again when an alert is sent (DNS
rebinding), the URL shown in full only to those who may manage alerts, and audited with credentials redacted."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from civicam.analytics.alerting import deliver
from civicam.analytics.records import AlertRule
from civicam.api.routers.analytics import RulePublic
from civicam.audit.log import Actor
from civicam.context import open_context
from civicam.db.models import AuditEvent
from civicam.registry import service
from support.hub import ACTOR, ADMIN_PASSWORD, Api, api_for, make_settings


class Receiver(BaseHTTPRequestHandler):
    got: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 — the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.got.append({"host": self.headers["Host"], "auth": self.headers.get("Authorization"), "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    Receiver.got = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def strict(sqlite_url: str, tmp_path: Path) -> Iterator[Api]:
    """A hub with the default (empty) webhook allow-list."""
    ctx = open_context(make_settings(tmp_path / "data", sqlite_url, alert_webhook_allow_networks=[]), create=True)
    yield from api_for(ctx)
    ctx.close()


def _site(api: Api) -> int:
    with api.ctx.db.session() as s:
        region = service.add_region(s, ACTOR, "North")
        return service.add_site(s, ACTOR, region, "Mall", "Ann", "ann@mall.example").id


INTERNAL = ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/hook",
            "http://169.254.169.254/latest", "http://10.0.0.5/hook", "http://192.168.1.10/hook", "http://0.0.0.0/hook",
            "http://224.0.0.1/hook", "http://[::ffff:127.0.0.1]/hook", "ftp://8.8.8.8/hook")


def test_internal_webhooks_are_refused_when_saved(strict: Api) -> None:
    site = _site(strict)
    admin = strict.login("admin", ADMIN_PASSWORD)
    for url in INTERNAL:
        r = strict.client.post("/api/alert-rules", json={"name": "m", "site_id": site, "threshold": 0.5,
                                                         "webhook_url": url}, headers=admin)
        assert r.status_code in (400, 422), (url, r.text)
        assert "webhook" in r.text.lower() or "pattern" in r.text.lower(), (url, r.text)
    rule = strict.client.post("/api/alert-rules", json={"name": "m", "site_id": site, "threshold": 0.5},
                              headers=admin).json()
    r = strict.client.put(f"/api/alert-rules/{rule['id']}", json={"name": "m", "site_id": site, "threshold": 0.5,
                                                                  "webhook_url": INTERNAL[3]}, headers=admin)
    assert r.status_code == 400 and "169.254.169.254" in r.text  # updates too
    with strict.ctx.db.session() as s:
        assert [x.webhook_url for x in s.execute(select(AlertRule)).scalars()] == [None]


def test_delivery_checks_the_address_again_and_connects_only_to_what_it_checked(receiver: int) -> None:
    body = {"type": "civicam.alert"}
    loopback = [ipaddress.ip_address("127.0.0.1")]
    # The name resolved to a public address when the rule was saved; now it points at loopback: refused,
    # and nothing reaches the (internal) receiver.
    error = deliver(f"http://hooks.example:{receiver}/hook", body, attempts=1, resolve=lambda host: loopback)
    assert error is not None and error.startswith("refused") and "127.0.0.1" in error
    assert Receiver.got == []
    # Allowed explicitly (tests, development): the request goes to the address that was checked, not to a
    # second lookup of the name (this one resolves nowhere), with the name kept in Host and credentials sent.
    error = deliver(f"http://hook:s3cret@rebind.invalid:{receiver}/hook", body, attempts=1,
                    resolve=lambda host: loopback, allow=["127.0.0.0/8"])
    assert error is None
    assert Receiver.got == [{"host": f"rebind.invalid:{receiver}", "auth": "Basic aG9vazpzM2NyZXQ=", "body": body}]


def test_webhook_is_audited_redacted_and_hidden_from_readers_who_cannot_manage_alerts(sqlite_api: Api) -> None:
    api = sqlite_api
    site = _site(api)
    admin = api.login("admin", ADMIN_PASSWORD)
    url = "http://hookuser:s3cret@127.0.0.1:9/T00/hook?token=abc&x=1"
    r = api.client.post("/api/alert-rules", json={"name": "m", "site_id": site, "threshold": 0.5,
                                                  "webhook_url": url}, headers=admin)
    assert r.status_code == 201, r.text
    with api.ctx.db.session() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "alert_rule.create")).scalar_one()
        rule = s.execute(select(AlertRule)).scalar_one()
        assert event.detail["webhook_url"] == "http://***@127.0.0.1:9/T00/hook?token=***&x=1"
        assert "s3cret" not in json.dumps(event.detail) and "abc" not in json.dumps(event.detail)
        # Those who may manage alerts see the URL to edit it; a reader who may not sees where it goes only.
        manager = Actor(name="op", source="t", role="operator")
        reader = Actor(name="aud", source="t", role="auditor")
        assert RulePublic.shown_to(manager, rule).webhook_url == url
        assert RulePublic.shown_to(reader, rule).webhook_url == "http://127.0.0.1:9/…"
    rep = api.user("rep", "site_rep", site)
    listed = api.client.get("/api/alert-rules", headers=rep).json()
    assert [x["webhook_url"] for x in listed] == [url]  # a site rep manages their own site's alerts
