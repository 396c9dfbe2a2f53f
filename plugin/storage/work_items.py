"""Work items: the latest snapshot of each tracker item leanguard has seen."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, distinct, func, or_, select, true, update
from sqlalchemy.orm import Session

from plugin.storage.dialects import upsert_insert
from plugin.storage.models import Tenant, WorkItemRow
from rules.model import WorkItem


def work_item_values(item: WorkItem, now: datetime) -> dict[str, Any]:
    """Return the columns a snapshot of ``item`` sets on its row (all but tenant and first seen)."""
    return {
        "item_id": item.id or item.key,
        "tracker": item.tracker,
        "key": item.key,
        "project": item.project,
        "kind": item.kind,
        "title": item.title,
        "snapshot": item.to_dict(),
        "status_category": item.status_category.value if item.status_category else None,
        # A snapshot is proof the item exists, so it undoes an earlier deletion.
        "deleted": False,
        "source_updated_at": _as_utc(item.updated),
        "updated_at": now,
    }


def upsert_work_item(
    session: Session, *, tenant_id: int, item: WorkItem, now: datetime
) -> tuple[WorkItemRow, bool]:
    """Store an item's snapshot unless a newer one is stored; True if it was applied."""
    values = work_item_values(item, now)
    item_id, source_updated_at = values["item_id"], values["source_updated_at"]
    row = _find_for_upsert(session, tenant_id, item)
    if row is None:
        # Two workers may meet a new item at once; the loser falls through to the update.
        inserted = session.scalar(
            upsert_insert(session, WorkItemRow)
            .values(tenant_id=tenant_id, first_seen_at=now, **values)
            .on_conflict_do_nothing(index_elements=[WorkItemRow.tenant_id, WorkItemRow.item_id])
            .returning(WorkItemRow)
        )
        if inserted is not None:
            return inserted, True
        row = _find_for_upsert(session, tenant_id, item)
        if row is None:
            raise LookupError(f"work item {item_id} vanished while it was being stored")
    # The age check sits in the UPDATE itself so that of two workers storing snapshots of the
    # same item, the older snapshot never lands last.
    not_newer: ColumnElement[bool] = true()
    if source_updated_at is not None:
        not_newer = or_(
            WorkItemRow.source_updated_at.is_(None),
            WorkItemRow.source_updated_at <= source_updated_at,
        )
    applied = session.scalar(
        update(WorkItemRow)
        .where(WorkItemRow.id == row.id, not_newer)
        .values(**values)
        .returning(WorkItemRow),
        execution_options={"populate_existing": True},
    )
    if applied is not None:
        return applied, True
    session.refresh(row)
    return row, False


def mark_work_item_deleted(
    session: Session, *, tenant_id: int, item_id_or_key: str, now: datetime
) -> WorkItemRow | None:
    """Mark an item deleted in the tracker; None if it was never stored."""
    row = session.scalars(_by_id_or_key(tenant_id, item_id_or_key)).first()
    if row is not None:
        row.deleted = True
        row.updated_at = now
        session.flush()
    return row


def find_work_item(
    session: Session, *, tenant_id: int | None, tracker: str, key: str
) -> WorkItemRow | None:
    """Find an item by key or tracker id, in one tenant or (tenant_id None) in any."""
    return session.scalars(
        _by_id_or_key(tenant_id, key).where(WorkItemRow.tracker == tracker)
    ).first()


def find_site_work_item(
    session: Session, *, tracker: str, site: str, key: str
) -> WorkItemRow | None:
    """Find an item by key or tracker id on one site, a trailing slash on its URL aside."""
    bare = site.rstrip("/")
    sites = [bare, f"{bare}/"]
    tenants = select(Tenant.id).where(Tenant.tracker == tracker, Tenant.site.in_(sites))
    return session.scalars(
        _by_id_or_key(None, key).where(
            WorkItemRow.tracker == tracker, WorkItemRow.tenant_id.in_(tenants)
        )
    ).first()


def count_sites_with_item(session: Session, *, tracker: str, key: str) -> int:
    """Count the sites that have an item of this key or tracker id."""
    query = select(func.count(distinct(WorkItemRow.tenant_id))).where(
        WorkItemRow.tracker == tracker, _is_id_or_key(key)
    )
    return session.scalar(query) or 0


def _is_id_or_key(item_id_or_key: str) -> ColumnElement[bool]:
    return or_(WorkItemRow.item_id == item_id_or_key, WorkItemRow.key == item_id_or_key)


def _by_id_or_key(tenant_id: int | None, item_id_or_key: str) -> Select[WorkItemRow]:
    query = select(WorkItemRow).where(_is_id_or_key(item_id_or_key))
    if tenant_id is not None:
        query = query.where(WorkItemRow.tenant_id == tenant_id)
    # Prefer a live item, then the one touched last: a key can outlive a deleted item.
    return query.order_by(WorkItemRow.deleted, WorkItemRow.updated_at.desc()).limit(1)


def _find_for_upsert(session: Session, tenant_id: int, item: WorkItem) -> WorkItemRow | None:
    # An item first stored without its id is keyed by its key; adopt that row once the id is
    # known instead of storing the item twice.
    candidates = [item.id, item.key] if item.id else [item.key]
    rows = session.scalars(
        select(WorkItemRow).where(
            WorkItemRow.tenant_id == tenant_id, WorkItemRow.item_id.in_(candidates)
        )
    ).all()
    by_item_id = {row.item_id: row for row in rows}
    return next((by_item_id[c] for c in candidates if c in by_item_id), None)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # A tracker timestamp without an offset is UTC (both Jira and Linear send UTC).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
