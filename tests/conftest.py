"""Suite-wide fixtures. Real services only: RTSP from GStreamer, PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from civicam.context import Context, open_context
from support.databases import PostgresTemplates, SqliteTemplates, postgres_available
from support.hub import Api, api_for, make_settings
from support.rtsp_fixtures import *  # noqa: F401,F403  (the RTSP server fixtures, suite-wide)
from support.services import require


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


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    yield from api_for(ctx)


@pytest.fixture
def sqlite_api(sqlite_ctx: Context) -> Iterator[Api]:
    yield from api_for(sqlite_ctx)
