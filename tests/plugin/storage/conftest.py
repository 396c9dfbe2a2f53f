"""Databases for the storage tests: a new SQLite file and a new PostgreSQL schema per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.storage import Database, default_database_url, get_or_create_tenant
from plugin.storage.db import temporary_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Give each test an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        # A folder that does not exist yet: upgrade() must create it.
        yield default_database_url(str(tmp_path / "instance"))
        return
    server: str = request.getfixturevalue("postgres_server")
    with temporary_schema(server, prefix="leanguard_test") as url:
        yield url


@pytest.fixture
def empty_database(database_url: str) -> Iterator[Database]:
    """A database with no tables yet."""
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def database(empty_database: Database) -> Database:
    """A database migrated to the newest revision."""
    empty_database.upgrade()
    return empty_database


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[Database]:
    """A migrated database in a new PostgreSQL schema (SQLite has no server to drop it)."""
    with temporary_schema(postgres_server, prefix="leanguard_test") as url:
        database = Database(url)
        try:
            database.upgrade()
            yield database
        finally:
            database.dispose()


@pytest.fixture
def tenant_id(database: Database) -> int:
    """The id of a Jira tenant."""
    with database.session() as session:
        return get_or_create_tenant(
            session, tracker="jira", site="https://acme.atlassian.net", name="Acme"
        ).id
