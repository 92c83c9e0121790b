"""Shared test helpers for a hub: settings, the test actor, and an API client that signs users in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from civicam.api.app import create_app
from civicam.audit.log import Actor
from civicam.auth.users import create_user
from civicam.config.settings import Settings, get_settings
from civicam.context import Context

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
ADMIN_PASSWORD = "Adm1n-test-pass"
ACTOR = Actor(name="test", source="pytest", role="admin")


# The suite's webhook receivers listen on loopback, which a hub refuses by default: test hubs allow it
# explicitly (tests of the refusal pass their own, empty, list).
TEST_WEBHOOK_NETWORKS = ["127.0.0.0/8"]


def make_settings(data_dir: Path, database_url: str, **extra: object) -> Settings:
    extra.setdefault("alert_webhook_allow_networks", TEST_WEBHOOK_NETWORKS)
    return get_settings(data_dir=data_dir, database_url=database_url, **extra)


@dataclass
class Api:
    client: TestClient
    ctx: Context

    def login(self, username: str, password: str) -> dict[str, str]:
        r = self.client.post("/api/auth/token", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def user(
        self, username: str, role: str, site_id: int | None = None, view_unblurred: bool = False
    ) -> dict[str, str]:
        """Create a user directly and return its auth headers."""
        password = f"{username}-Passw0rd!"
        with self.ctx.db.session() as s:
            create_user(s, username, password, role, site_id, view_unblurred)
        return self.login(username, password)


def api_for(context: Context) -> Iterator[Api]:
    with context.db.session() as s:
        create_user(s, "admin", ADMIN_PASSWORD, "admin")
    with TestClient(create_app(context), base_url="http://127.0.0.1") as client:
        yield Api(client, context)
