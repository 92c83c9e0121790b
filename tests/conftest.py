"""Suite-wide fixtures. Real services only: RTSP from GStreamer, PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from civicam.api.app import create_app
from civicam.audit.log import Actor
from civicam.auth.users import create_user
from civicam.config.settings import Settings, get_settings
from civicam.context import Context, open_context
from support.databases import PostgresTemplates, SqliteTemplates, postgres_available
from support.services import require

try:  # the RTSP fixtures need GStreamer; the rest of the suite does not
    from support.rtsp_fixtures import *  # noqa: F401,F403
except ImportError:
    pass

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ADMIN_PASSWORD = "Adm1n-test-pass"
ACTOR = Actor(name="test", source="pytest", role="admin")


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_templates() -> Iterator[PostgresTemplates | None]:
    if not postgres_available():
        yield None
        return
    templates = PostgresTemplates()
    yield templates
    templates.close()


@pytest.fixture
def sqlite_url(sqlite_templates: SqliteTemplates, tmp_path: Path) -> str:
    return sqlite_templates.fresh(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, sqlite_templates: SqliteTemplates, postgres_templates: PostgresTemplates | None,
    tmp_path: Path,
) -> Iterator[str]:
    """Each persistence and API test runs on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield sqlite_templates.fresh(tmp_path)
        return
    require(postgres_templates is not None, "PostgreSQL at 127.0.0.1:5432")
    assert postgres_templates is not None
    url = postgres_templates.fresh()
    yield url
    postgres_templates.drop(url)


def make_settings(data_dir: Path, database_url: str, **extra: object) -> Settings:
    return get_settings(data_dir=data_dir, database_url=database_url, **extra)


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[Context]:
    context = open_context(make_settings(tmp_path / "data", db_url), create=True)
    yield context
    context.close()


@pytest.fixture
def sqlite_ctx(sqlite_url: str, tmp_path: Path) -> Iterator[Context]:
    """The same hub context on SQLite only, for tests whose subject is not the database."""
    context = open_context(make_settings(tmp_path / "data", sqlite_url), create=True)
    yield context
    context.close()


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


def _api(context: Context) -> Iterator[Api]:
    with context.db.session() as s:
        create_user(s, "admin", ADMIN_PASSWORD, "admin")
    with TestClient(create_app(context), base_url="http://127.0.0.1") as client:
        yield Api(client, context)


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    yield from _api(ctx)


@pytest.fixture
def sqlite_api(sqlite_ctx: Context) -> Iterator[Api]:
    yield from _api(sqlite_ctx)
