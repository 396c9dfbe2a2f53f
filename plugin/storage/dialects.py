"""Dialect-specific INSERTs that keep concurrent writers from colliding."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert_insert(session: Session, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """Return an INSERT for ``model`` that supports ``ON CONFLICT`` on the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"leanguard runs on SQLite or PostgreSQL, not {dialect}")
