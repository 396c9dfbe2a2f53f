"""Compress delivery payloads with LZ4 on PostgreSQL servers that support it.

A webhook body of tens of kilobytes is compressed as it is stored; LZ4 costs the server a
fraction of the default pglz's time, and the inbox INSERT is the busiest statement there is.
Rows stored earlier keep their compression until rewritten; SQLite has nothing to change.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _supports_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    # PostgreSQL 14 and later, built with LZ4, list it among the TOAST compression methods.
    return bool(
        bind.scalar(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        )
    )


def upgrade() -> None:
    """Apply this revision."""
    if _supports_lz4():
        op.execute("ALTER TABLE deliveries ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    """Revert this revision."""
    if _supports_lz4():
        op.execute("ALTER TABLE deliveries ALTER COLUMN payload SET COMPRESSION DEFAULT")
