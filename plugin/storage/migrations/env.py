"""Alembic environment: migrates leanguard's tables on the connection the caller hands over."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from plugin.storage.db import Database
from plugin.storage.models import Base
from plugin.storage.types import UTCDateTime

config = context.config


def _render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    # Revisions stay frozen in time: they spell the stored type instead of importing ours.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_item=_render_item,
        # SQLite cannot ALTER most things; batch operations rebuild the table there and are
        # plain ALTERs on PostgreSQL, so generated revisions work on both.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Write the migration SQL instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_item=_render_item,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the given connection, or on one opened from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("the Alembic config has neither a connection nor sqlalchemy.url")
    database = Database(url)
    try:
        with database.engine.begin() as opened:
            _run(opened)
    finally:
        database.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
