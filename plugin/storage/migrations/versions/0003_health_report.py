"""Create backfills, epic timelines and outcome-review reminders for the health report.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SQLite only auto-numbers a column declared exactly ``INTEGER PRIMARY KEY``.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "backfills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("tracker", sa.String(length=16), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("page_token", sa.Text(), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("items_seen", sa.Integer(), nullable=False),
        sa.Column("items_evaluated", sa.Integer(), nullable=False),
        sa.Column("items_total", sa.Integer(), nullable=True),
        sa.Column("waited_s", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        _timestamp("started_at"),
        _timestamp("updated_at"),
        _timestamp("finished_at", nullable=True),
        sa.CheckConstraint(
            "state IN ('running', 'done', 'failed')", name=op.f("ck_backfills_state")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_backfills_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfills")),
    )
    op.create_index(
        "ix_backfills_tenant_id_tracker_project", "backfills", ["tenant_id", "tracker", "project"]
    )

    op.create_table(
        "epic_timelines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("tracker", sa.String(length=16), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        _timestamp("created_at", nullable=True),
        _timestamp("started_at", nullable=True),
        _timestamp("done_at", nullable=True),
        sa.Column("canceled", sa.Boolean(), nullable=False),
        sa.Column("lean_ready_at_start", sa.Boolean(), nullable=True),
        sa.Column("lean_ready_note", sa.Text(), nullable=False),
        sa.Column("metric_at_done", sa.Boolean(), nullable=True),
        sa.Column("outcome_review", sa.String(length=16), nullable=True),
        _timestamp("reviewed_at", nullable=True),
        sa.Column("child_issues_done", sa.Integer(), nullable=False),
        sa.Column("new_value", sa.Boolean(), nullable=False),
        sa.Column("last_status_category", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        _timestamp("synced_at"),
        sa.CheckConstraint(
            "outcome_review IN ('validated', 'invalidated', 'inconclusive')",
            name=op.f("ck_epic_timelines_outcome_review"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_epic_timelines_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_epic_timelines_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epic_timelines")),
        sa.UniqueConstraint("work_item_id", name=op.f("uq_epic_timelines_work_item_id")),
    )
    op.create_index(
        "ix_epic_timelines_tenant_id_tracker_project",
        "epic_timelines",
        ["tenant_id", "tracker", "project"],
    )

    op.create_table(
        "outcome_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        _timestamp("due_at"),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("sent_at", nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'canceled', 'failed')",
            name=op.f("ck_outcome_reminders_state"),
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_outcome_reminders_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_reminders")),
        sa.UniqueConstraint("work_item_id", name=op.f("uq_outcome_reminders_work_item_id")),
    )
    op.create_index("ix_outcome_reminders_state_due_at", "outcome_reminders", ["state", "due_at"])

    op.create_table(
        "item_hygiene",
        sa.Column("work_item_id", sa.Integer(), autoincrement=False, nullable=False),
        _timestamp("first_fail_at", nullable=True),
        _timestamp("first_fix_at", nullable=True),
        _timestamp("latest_at"),
        sa.Column("latest_id", _BIG_ID, nullable=False),
        sa.Column("latest_status", sa.String(length=16), nullable=False),
        sa.Column("latest_violations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_item_hygiene_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("work_item_id", name=op.f("pk_item_hygiene")),
    )

    op.create_table(
        "report_watermarks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", _BIG_ID, nullable=False),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_watermarks")),
    )


def downgrade() -> None:
    """Revert this revision."""
    # Indexes go with their tables.
    for table in (
        "report_watermarks",
        "item_hygiene",
        "outcome_reminders",
        "epic_timelines",
        "backfills",
    ):
        op.drop_table(table)
