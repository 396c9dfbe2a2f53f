"""The tables: tenants, the delivery inbox, work items, evaluation history, cards, rule sets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from plugin.storage.types import BigIntegerPK, UTCDateTime, utcnow
from rules.model import WorkItem
from rules.result import Evaluation
from webhooks.events import InboundEvent

# Deterministic names let later migrations drop or alter constraints on both databases
# (SQLite batch migrations need a name to find a constraint).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base of every leanguard table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class DeliveryState(StrEnum):
    """Where a delivery is in the inbox."""

    RECEIVED = "received"
    PROCESSING = "processing"
    DONE = "done"
    IGNORED = "ignored"
    RETRYING = "retrying"
    DEAD = "dead"


class CardState(StrEnum):
    """Whether an item's warning comment is showing, resolved or gone."""

    OPEN = "open"
    RESOLVED = "resolved"
    DELETED = "deleted"


class RulesetSource(StrEnum):
    """Where a rule set version came from."""

    API = "api"
    FILE = "file"


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(value)) for value in values)})"


class Tenant(Base):
    """One tracker site leanguard serves: a Jira site or a Linear organisation."""

    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("tracker", "site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tracker: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(255))
    """A Jira base URL, a Linear organisation id, or a Connect tenant's site."""
    name: Mapped[str] = mapped_column(String(255), default="")
    client_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    """The Atlassian Connect clientKey, for tenants installed as a Connect app."""
    shared_secret: Mapped[str | None] = mapped_column(Text)
    """The Connect shared secret, encrypted by the caller before it is stored."""
    enabled: Mapped[bool] = mapped_column(default=True)
    bot_identity: Mapped[str | None] = mapped_column(String(255))
    """The tracker account leanguard writes as, so its own edits can be ignored."""
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One webhook delivery in the inbox, from acceptance to done or dead."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "delivery_id"),
        Index("ix_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        CheckConstraint(_one_of("state", DeliveryState), name="state"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tracker: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The parsed event, as ``InboundEvent.to_dict()``."""
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    """When a retry is due, or when a worker's claim on the delivery expires."""
    updated_at: Mapped[datetime]

    def event(self) -> InboundEvent:
        """Rebuild the stored event."""
        return InboundEvent.from_dict(self.payload)


class WorkItemRow(Base):
    """The latest known snapshot of one tracker item."""

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("tenant_id", "item_id"),
        Index("ix_work_items_tenant_id_key", "tenant_id", "key"),
        Index("ix_work_items_tenant_id_project", "tenant_id", "project"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tracker: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[str] = mapped_column(String(255))
    """The tracker's own id, stable when a Jira issue moves and changes key."""
    key: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The item as ``WorkItem.to_dict()``."""
    status_category: Mapped[str | None] = mapped_column(String(16))
    deleted: Mapped[bool] = mapped_column(default=False)
    source_updated_at: Mapped[datetime | None]
    """The tracker's ``updated`` time of the snapshot; an older snapshot never replaces it."""
    first_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def item(self) -> WorkItem:
        """Rebuild the stored snapshot."""
        return WorkItem.from_dict(self.snapshot)


class EvaluationRow(Base):
    """One evaluation of a work item; the table is the item's history."""

    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_work_item_id_evaluated_at", "work_item_id", "evaluated_at"),
        Index("ix_evaluations_evaluated_at", "evaluated_at"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id", ondelete="CASCADE"))
    evaluated_at: Mapped[datetime]
    ruleset_name: Mapped[str] = mapped_column(String(255))
    ruleset_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    violations: Mapped[int]
    """How many rules fail visibly (in ``warn`` or ``gate`` mode)."""
    failing_rules: Mapped[list[str]] = mapped_column(JSON)
    """The ids of the visibly failing rules."""
    fields_present: Mapped[list[str]] = mapped_column(JSON)
    """The ids of the outcome fields found on the item."""
    # Reports scan status, violations and evaluated_at over many rows; deferring the tree
    # keeps those queries from loading it. Repository getters undefer it where it is used.
    tree: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    """The whole result, as ``Evaluation.to_dict()``."""

    def evaluation(self) -> Evaluation:
        """Rebuild the stored evaluation."""
        return Evaluation.from_dict(self.tree)


class CardRow(Base):
    """The single warning comment leanguard keeps on a work item."""

    __tablename__ = "cards"
    __table_args__ = (CheckConstraint(_one_of("state", CardState), name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    work_item_id: Mapped[int] = mapped_column(
        ForeignKey("work_items.id", ondelete="CASCADE"), unique=True
    )
    comment_id: Mapped[str | None] = mapped_column(String(255))
    """The tracker's comment id; None until the comment is posted."""
    content_hash: Mapped[str] = mapped_column(String(128))
    """A hash of the rendered comment, so an unchanged card is not edited again."""
    state: Mapped[str] = mapped_column(String(16))
    label_applied: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RulesetRow(Base):
    """One saved version of a rule set for a tenant, tracker and project (None = any)."""

    __tablename__ = "rulesets"
    __table_args__ = (CheckConstraint(_one_of("source_kind", RulesetSource), name="source_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tracker: Mapped[str | None] = mapped_column(String(16))
    project: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int]
    source_text: Mapped[str] = mapped_column(Text)
    """The rule set as YAML, exactly as it was given."""
    source_kind: Mapped[str] = mapped_column(String(8))
    source_path: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


# Versions are unique per (tenant_id, tracker, project). A plain unique constraint treats NULLs
# as distinct, so two organisation defaults could share a version; the index folds NULLs.
Index(
    "uq_rulesets_scope_version",
    func.coalesce(RulesetRow.tenant_id, 0),
    func.coalesce(RulesetRow.tracker, ""),
    func.coalesce(RulesetRow.project, ""),
    RulesetRow.version,
    unique=True,
)
