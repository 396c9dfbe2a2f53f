"""Create tenants, deliveries, work items, evaluations, cards and rule sets.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only auto-numbers a column declared exactly ``INTEGER PRIMARY KEY``.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("client_key", sa.String(length=255), nullable=True),
        sa.Column("shared_secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("bot_identity", sa.String(length=255), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("client_key", name=op.f("uq_tenants_client_key")),
        sa.UniqueConstraint("tracker", "site", name=op.f("uq_tenants_tracker_site")),
    )

    op.create_table(
        "deliveries",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("tracker", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        _timestamp("received_at"),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("next_attempt_at", nullable=True),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "state IN ('received', 'processing', 'done', 'ignored', 'retrying', 'dead')",
            name=op.f("ck_deliveries_state"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_deliveries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "tenant_id", "delivery_id", name=op.f("uq_deliveries_tenant_id_delivery_id")
        ),
    )
    op.create_index(
        "ix_deliveries_state_next_attempt_at", "deliveries", ["state", "next_attempt_at"]
    )

    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("tracker", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("status_category", sa.String(length=16), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        _timestamp("source_updated_at", nullable=True),
        _timestamp("first_seen_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_work_items_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
        sa.UniqueConstraint("tenant_id", "item_id", name=op.f("uq_work_items_tenant_id_item_id")),
    )
    op.create_index("ix_work_items_tenant_id_key", "work_items", ["tenant_id", "key"])
    op.create_index("ix_work_items_tenant_id_project", "work_items", ["tenant_id", "project"])

    op.create_table(
        "evaluations",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        _timestamp("evaluated_at"),
        sa.Column("ruleset_name", sa.String(length=255), nullable=False),
        sa.Column("ruleset_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("failing_rules", sa.JSON(), nullable=False),
        sa.Column("fields_present", sa.JSON(), nullable=False),
        sa.Column("tree", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_evaluations_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    op.create_index(
        "ix_evaluations_work_item_id_evaluated_at", "evaluations", ["work_item_id", "evaluated_at"]
    )
    op.create_index("ix_evaluations_evaluated_at", "evaluations", ["evaluated_at"])

    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.String(length=255), nullable=True),
        sa.Column("content_hash", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("label_applied", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint("state IN ('open', 'resolved', 'deleted')", name=op.f("ck_cards_state")),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_cards_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
        sa.UniqueConstraint("work_item_id", name=op.f("uq_cards_work_item_id")),
    )

    op.create_table(
        "rulesets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("tracker", sa.String(length=16), nullable=True),
        sa.Column("project", sa.String(length=255), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("source_kind", sa.String(length=8), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint("source_kind IN ('api', 'file')", name=op.f("ck_rulesets_source_kind")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_rulesets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rulesets")),
    )
    # A unique constraint would treat NULL scopes (organisation defaults) as all distinct.
    op.create_index(
        "uq_rulesets_scope_version",
        "rulesets",
        [
            sa.literal_column("coalesce(tenant_id, 0)"),
            sa.literal_column("coalesce(tracker, '')"),
            sa.literal_column("coalesce(project, '')"),
            "version",
        ],
        unique=True,
    )


def downgrade() -> None:
    """Revert this revision."""
    # Indexes go with their tables.
    for table in ("rulesets", "cards", "evaluations", "work_items", "deliveries", "tenants"):
        op.drop_table(table)
