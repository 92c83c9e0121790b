"""Fresh, migrated databases per test: SQLite files and real PostgreSQL databases cloned from a template."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import create_engine

from civicam.db.session import upgrade
from support.services import require

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN):
            return True
    except psycopg.OperationalError:
        return False


def _pg(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


class SqliteTemplates:
    def __init__(self, root: Path) -> None:
        self.template = root / "template.db"
        engine = create_engine(f"sqlite:///{self.template}")
        upgrade(engine)
        engine.dispose()

    def fresh(self, directory: Path) -> str:
        target = directory / "civicam.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"


class PostgresTemplates:
    """One migrated template database per test session; each test gets a clone (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self) -> None:
        self.template = f"civicam_tpl_{uuid.uuid4().hex[:10]}"
        _pg(f'CREATE DATABASE "{self.template}"')
        engine = create_engine(PG_URL.format(name=self.template))
        upgrade(engine)
        engine.dispose()
        self.created: list[str] = []

    def fresh(self) -> str:
        name = f"civicam_t_{uuid.uuid4().hex[:12]}"
        _pg(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return PG_URL.format(name=name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        _pg(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


def iterate(templates: PostgresTemplates) -> Iterator[str]:
    url = templates.fresh()
    try:
        yield url
    finally:
        templates.drop(url)


@contextmanager
def fresh_database(kind: str, sqlite_templates: SqliteTemplates, postgres_templates: PostgresTemplates | None,
                   directory: Path) -> Iterator[str]:
    """A fresh migrated database of ``kind`` ("sqlite" or "postgres"), dropped afterwards. A missing
    PostgreSQL skips on a laptop and fails under CI."""
    if kind == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        yield sqlite_templates.fresh(directory)
        return
    require(postgres_templates is not None, "PostgreSQL at 127.0.0.1:5432")
    assert postgres_templates is not None
    url = postgres_templates.fresh()
    try:
        yield url
    finally:
        postgres_templates.drop(url)
