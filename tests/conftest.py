"""Suite-wide fixtures. Real services only: RTSP from GStreamer, PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from civicam.context import Context, open_context
from support.databases import PostgresTemplates, SqliteTemplates, fresh_database, postgres_available
from support.hub import Api, api_for, make_settings
from support.rtsp_fixtures import *  # noqa: F401,F403  (the RTSP server fixtures, suite-wide)
from support.seaweedfs_fixtures import *  # noqa: F401,F403  (SeaweedFS's S3, suite-wide)
from support.services import MISSING, require


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Close with how many tests were skipped for want of data or a service, and which: a thin run on a
    machine without ../shared or PostgreSQL must not pass for a full one."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        message = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        if MISSING in message:
            what = message.removeprefix("Skipped: ").split(MISSING)[0]
            reasons[what] = reasons.get(what, 0) + 1
    total = sum(reasons.values())
    terminalreporter.write_line(f"skipped for missing data or services: {total}"
                                + "".join(f"; {n} need {what}" for what, n in sorted(reasons.items())))


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


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_db_url(
    request: pytest.FixtureRequest, sqlite_templates: SqliteTemplates, postgres_templates: PostgresTemplates | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """``db_url`` for a hub a whole module shares (a recording kept running through its tests)."""
    with fresh_database(str(request.param), sqlite_templates, postgres_templates,
                        tmp_path_factory.mktemp(f"db-{request.param}")) as url:
        yield url


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
