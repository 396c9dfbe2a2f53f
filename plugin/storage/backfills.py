"""Backfills, epic timelines and outcome-review reminders: the tables behind the health report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from plugin.storage.dialects import upsert_insert
from plugin.storage.evaluations import evaluation_values
from plugin.storage.models import Base, EvaluationRow, WorkItemRow
from plugin.storage.types import BigIntegerPK
from plugin.storage.work_items import work_item_values
from rules.model import WorkItem
from rules.result import Evaluation

STALE_AFTER = timedelta(minutes=2)
"""A running backfill that has not reported for this long was interrupted and may be resumed."""


class BackfillState(StrEnum):
    """Where a backfill is."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class OutcomeReview(StrEnum):
    """What a look back at a delivered epic concluded about its hypothesis."""

    VALIDATED = "validated"
    INVALIDATED = "invalidated"
    INCONCLUSIVE = "inconclusive"


class ReminderState(StrEnum):
    """Where an outcome-review reminder is."""

    PENDING = "pending"
    SENT = "sent"
    CANCELED = "canceled"
    FAILED = "failed"


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(value)) for value in values)})"


class BackfillRow(Base):
    """One import of a project's epics with their history; its cursor makes it resumable."""

    __tablename__ = "backfills"
    __table_args__ = (
        Index("ix_backfills_tenant_id_tracker_project", "tenant_id", "tracker", "project"),
        CheckConstraint(_one_of("state", BackfillState), name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tracker: Mapped[str] = mapped_column(String(16))
    project: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    page_token: Mapped[str | None] = mapped_column(Text)
    """The tracker's cursor of the next page (Jira nextPageToken or startAt, Linear cursor)."""
    pages_done: Mapped[int] = mapped_column(default=0)
    items_seen: Mapped[int] = mapped_column(default=0)
    items_evaluated: Mapped[int] = mapped_column(default=0)
    items_total: Mapped[int | None]
    """The tracker's count of matching epics, when it gives one."""
    waited_s: Mapped[float] = mapped_column(Float, default=0.0)
    """Seconds spent waiting on the tracker's rate limits."""
    message: Mapped[str] = mapped_column(Text, default="")
    """What the backfill is doing or why it stopped, for people."""
    requested_by: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    """Touched after every page and wait: a heartbeat that tells a live run from a dead one."""
    finished_at: Mapped[datetime | None]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict for the API and the page."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "tracker": self.tracker,
            "project": self.project,
            "state": self.state,
            "pages_done": self.pages_done,
            "items_seen": self.items_seen,
            "items_evaluated": self.items_evaluated,
            "items_total": self.items_total,
            "waited_s": round(self.waited_s, 1),
            "message": self.message,
            "requested_by": self.requested_by,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "resumable": self.state != BackfillState.DONE and self.page_token is not None,
        }


class EpicTimelineRow(Base):
    """When an epic started and was delivered, and what was known about its outcome."""

    __tablename__ = "epic_timelines"
    __table_args__ = (
        Index("ix_epic_timelines_tenant_id_tracker_project", "tenant_id", "tracker", "project"),
        CheckConstraint(_one_of("outcome_review", OutcomeReview), name="outcome_review"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_item_id: Mapped[int] = mapped_column(
        ForeignKey("work_items.id", ondelete="CASCADE"), unique=True
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Copied from the work item so that report queries filter one narrow table.
    tracker: Mapped[str] = mapped_column(String(16))
    project: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    """When the epic first entered an in-progress status."""
    done_at: Mapped[datetime | None]
    """When the epic last entered a done status (None while it is not done)."""
    canceled: Mapped[bool] = mapped_column(default=False)
    """Done by cancelling (Linear ``canceled``, a Jira won't-do resolution): not delivered."""
    lean_ready_at_start: Mapped[bool | None]
    """Whether every required outcome field was present when it started; None when unknown."""
    lean_ready_note: Mapped[str] = mapped_column(Text, default="")
    """How readiness was known (history replay, seen live) or why it is unknown."""
    metric_at_done: Mapped[bool | None]
    """Whether it named a success metric when it was delivered."""
    outcome_review: Mapped[str | None] = mapped_column(String(16))
    reviewed_at: Mapped[datetime | None]
    child_issues_done: Mapped[int] = mapped_column(default=0)
    new_value: Mapped[bool] = mapped_column(default=True)
    """False for maintenance work (labels such as ``maintenance`` or ``tech-debt``)."""
    last_status_category: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="live")
    """``backfill`` when built from the tracker's history, ``live`` when seen as it happened."""
    synced_at: Mapped[datetime]
    """The work item's ``updated_at`` this row reflects; a newer item is synced again."""


class OutcomeReminderRow(Base):
    """A durable reminder to record an outcome review on a delivered epic."""

    __tablename__ = "outcome_reminders"
    __table_args__ = (
        Index("ix_outcome_reminders_state_due_at", "state", "due_at"),
        CheckConstraint(_one_of("state", ReminderState), name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_item_id: Mapped[int] = mapped_column(
        ForeignKey("work_items.id", ondelete="CASCADE"), unique=True
    )
    due_at: Mapped[datetime]
    basis: Mapped[str] = mapped_column(Text)
    """Why this date: the success metric's own date, or the configured days after done."""
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class ItemHygieneRow(Base):
    """One item's evaluation history folded to what the report needs (kept by the report)."""

    __tablename__ = "item_hygiene"

    work_item_id: Mapped[int] = mapped_column(
        ForeignKey("work_items.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    first_fail_at: Mapped[datetime | None]
    first_fix_at: Mapped[datetime | None]
    """The first passing evaluation after the first failing one."""
    latest_at: Mapped[datetime]
    latest_id: Mapped[int] = mapped_column(BigIntegerPK)
    latest_status: Mapped[str] = mapped_column(String(16))
    latest_violations: Mapped[int]


class ReportWatermarkRow(Base):
    """How far the evaluation history has been folded into ``item_hygiene``."""

    __tablename__ = "report_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigIntegerPK)
    """Every evaluation with an id up to this one is folded in."""
    updated_at: Mapped[datetime]


# Backfills -------------------------------------------------------------------------------------


def start_backfill(
    session: Session,
    *,
    tenant_id: int,
    tracker: str,
    project: str,
    now: datetime,
    requested_by: str = "",
    restart: bool = False,
) -> tuple[BackfillRow, bool]:
    """Resume the project's interrupted backfill, or start one; True when a new one started.

    A backfill that is running and reported recently is returned as it is (False), so two
    requests never run one project twice; the caller tells by its ``updated_at``.
    """
    current = latest_backfill(session, tenant_id=tenant_id, tracker=tracker, project=project)
    if current is not None and current.state != BackfillState.DONE and not restart:
        if current.state == BackfillState.RUNNING and now - current.updated_at < STALE_AFTER:
            return current, False
        current.state = BackfillState.RUNNING
        current.message = "Resumed."
        current.updated_at = now
        current.finished_at = None
        session.flush()
        return current, True
    if current is not None and current.state == BackfillState.RUNNING and restart:
        if now - current.updated_at < STALE_AFTER:
            return current, False
        current.state = BackfillState.FAILED
        current.message = "Replaced by a new backfill."
    row = BackfillRow(
        tenant_id=tenant_id,
        tracker=tracker,
        project=project,
        state=BackfillState.RUNNING,
        page_token=None,
        items_total=None,
        message="Started.",
        requested_by=requested_by,
        started_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row, True


def latest_backfill(
    session: Session, *, tenant_id: int | None, tracker: str, project: str
) -> BackfillRow | None:
    """Return the project's newest backfill (in one tenant, or in any with ``tenant_id`` None)."""
    query = select(BackfillRow).where(
        BackfillRow.tracker == tracker, BackfillRow.project == project
    )
    if tenant_id is not None:
        query = query.where(BackfillRow.tenant_id == tenant_id)
    return session.scalars(query.order_by(BackfillRow.id.desc()).limit(1)).first()


def list_backfills(
    session: Session,
    *,
    tenant_id: int | None = None,
    tracker: str | None = None,
    project: str | None = None,
    limit: int = 50,
) -> list[BackfillRow]:
    """Return backfills, newest first."""
    query = select(BackfillRow)
    if tenant_id is not None:
        query = query.where(BackfillRow.tenant_id == tenant_id)
    if tracker:
        query = query.where(BackfillRow.tracker == tracker)
    if project:
        query = query.where(BackfillRow.project == project)
    return list(session.scalars(query.order_by(BackfillRow.id.desc()).limit(limit)))


def record_page(
    session: Session,
    *,
    backfill_id: int,
    next_token: str | None,
    seen: int,
    evaluated: int,
    now: datetime,
    total: int | None = None,
) -> None:
    """Store one finished page: the counts and the cursor a resumed run starts from."""
    values: dict[str, Any] = {
        "page_token": next_token,
        "pages_done": BackfillRow.pages_done + 1,
        "items_seen": BackfillRow.items_seen + seen,
        "items_evaluated": BackfillRow.items_evaluated + evaluated,
        "updated_at": now,
    }
    if total is not None:
        values["items_total"] = total
    session.execute(update(BackfillRow).where(BackfillRow.id == backfill_id).values(**values))


def note_backfill(
    session: Session,
    *,
    backfill_id: int,
    now: datetime,
    message: str,
    waited_s: float = 0.0,
    state: BackfillState | None = None,
    total: int | None = None,
) -> None:
    """Record what a backfill is doing (a wait, the end, a failure); also its heartbeat."""
    values: dict[str, Any] = {
        "message": message,
        "updated_at": now,
        "waited_s": BackfillRow.waited_s + waited_s,
    }
    if state is not None:
        values["state"] = state.value
        if state != BackfillState.RUNNING:
            values["finished_at"] = now
    if total is not None:
        values["items_total"] = total
    session.execute(update(BackfillRow).where(BackfillRow.id == backfill_id).values(**values))


# Timelines -------------------------------------------------------------------------------------

TIMELINE_FIELDS = (
    "tracker",
    "project",
    "key",
    "created_at",
    "started_at",
    "done_at",
    "canceled",
    "lean_ready_at_start",
    "lean_ready_note",
    "metric_at_done",
    "outcome_review",
    "reviewed_at",
    "child_issues_done",
    "new_value",
    "last_status_category",
    "source",
    "synced_at",
)


def save_timeline(
    session: Session, *, work_item_id: int, tenant_id: int, values: dict[str, Any]
) -> None:
    """Create or replace an epic's timeline in one statement."""
    unknown = set(values) - set(TIMELINE_FIELDS)
    if unknown:
        raise ValueError(f"not timeline fields: {sorted(unknown)}")
    insert = upsert_insert(session, EpicTimelineRow)
    statement = insert.values(work_item_id=work_item_id, tenant_id=tenant_id, **values)
    session.execute(
        statement.on_conflict_do_update(index_elements=[EpicTimelineRow.work_item_id], set_=values)
    )


def get_timeline(session: Session, *, work_item_id: int) -> EpicTimelineRow | None:
    """Return an epic's timeline, if one was built."""
    return session.scalars(
        select(EpicTimelineRow).where(EpicTimelineRow.work_item_id == work_item_id)
    ).first()


# Reminders -------------------------------------------------------------------------------------


def schedule_reminder(
    session: Session, *, work_item_id: int, due_at: datetime, basis: str, now: datetime
) -> None:
    """Schedule (or move) the epic's outcome-review reminder; a sent one is left alone."""
    insert = upsert_insert(session, OutcomeReminderRow)
    changes = {"due_at": due_at, "basis": basis, "state": ReminderState.PENDING.value}
    session.execute(
        insert.values(
            work_item_id=work_item_id, created_at=now, attempts=0, **changes
        ).on_conflict_do_update(
            index_elements=[OutcomeReminderRow.work_item_id],
            set_=changes,
            where=OutcomeReminderRow.state.in_(
                [ReminderState.PENDING.value, ReminderState.CANCELED.value]
            ),
        )
    )


def cancel_reminder(session: Session, *, work_item_id: int) -> None:
    """Cancel a pending reminder: the review it asked for is there, or the epic was reopened."""
    session.execute(
        update(OutcomeReminderRow)
        .where(
            OutcomeReminderRow.work_item_id == work_item_id,
            OutcomeReminderRow.state == ReminderState.PENDING,
        )
        .values(state=ReminderState.CANCELED.value)
    )


def due_reminders(session: Session, *, now: datetime, limit: int = 50) -> list[OutcomeReminderRow]:
    """Return pending reminders whose time has come, oldest first."""
    return list(
        session.scalars(
            select(OutcomeReminderRow)
            .where(
                OutcomeReminderRow.state == ReminderState.PENDING,
                OutcomeReminderRow.due_at <= now,
            )
            .order_by(OutcomeReminderRow.due_at, OutcomeReminderRow.id)
            .limit(limit)
        )
    )


def finish_reminder(
    session: Session,
    *,
    reminder_id: int,
    state: ReminderState,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Record a reminder's outcome: sent, canceled, failed, or pending again at ``retry_at``."""
    values: dict[str, Any] = {
        "state": state.value,
        "attempts": OutcomeReminderRow.attempts + 1,
        "last_error": error,
    }
    if state == ReminderState.SENT:
        values["sent_at"] = now
    if retry_at is not None:
        values["due_at"] = retry_at
    session.execute(
        update(OutcomeReminderRow)
        .where(
            OutcomeReminderRow.id == reminder_id,
            OutcomeReminderRow.state == ReminderState.PENDING,
        )
        .values(**values)
    )


# Bulk writes for backfills ---------------------------------------------------------------------


def store_page(
    session: Session,
    *,
    tenant_id: int,
    entries: Sequence[tuple[WorkItem, Evaluation]],
    now: datetime,
) -> list[tuple[int, bool]]:
    """Store a page of items with their evaluations in a few statements: (row id, applied).

    The same rules as ``upsert_work_item``: an item already stored under its key is adopted, a
    stored snapshot newer than the page's is kept (and gets no new evaluation).
    """
    wanted = {c for item, _ in entries for c in (item.id or item.key, item.key)}
    existing: dict[str, tuple[int, datetime | None]] = {}
    for row in session.execute(
        select(WorkItemRow.id, WorkItemRow.item_id, WorkItemRow.source_updated_at).where(
            WorkItemRow.tenant_id == tenant_id, WorkItemRow.item_id.in_(wanted)
        )
    ):
        existing[row.item_id] = (row.id, row.source_updated_at)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    results: list[tuple[int | None, bool]] = []
    for item, _ in entries:
        values = work_item_values(item, now)
        item_id = values["item_id"]
        found = existing.get(item_id) or existing.get(item.key)
        if found is None:
            inserts.append({**values, "tenant_id": tenant_id, "first_seen_at": now})
            results.append((None, True))
            continue
        row_id, stored = found
        source = values["source_updated_at"]
        applied = source is None or stored is None or stored <= source
        if applied:
            updates.append({**values, "row_id": row_id})
        results.append((row_id, applied))
    new_ids: list[int] = []
    if inserts:
        new_ids = list(
            session.scalars(
                insert(WorkItemRow).returning(WorkItemRow.id, sort_by_parameter_order=True),
                inserts,
            )
        )
    if updates:
        # The age check sits in the UPDATE too, so a newer snapshot stored meanwhile stays.
        table = cast(Table, WorkItemRow.__table__)
        session.connection().execute(
            update(table)
            .where(
                table.c.id == bindparam("row_id"),
                or_(
                    table.c.source_updated_at.is_(None),
                    table.c.source_updated_at <= bindparam("source_updated_at"),
                ),
            )
            .values({k: bindparam(k) for k in updates[0] if k != "row_id"}),
            updates,
        )
    fresh = iter(new_ids)
    stored_ids = [row_id if row_id is not None else next(fresh) for row_id, _ in results]
    evaluations = [
        evaluation_values(row_id, evaluation, now)
        for row_id, (_, applied), (_, evaluation) in zip(stored_ids, results, entries, strict=True)
        if applied
    ]
    if evaluations:
        # Core with RETURNING: SQLAlchemy batches the rows into one INSERT per page
        # ("insertmanyvalues") instead of one statement per row.
        table = cast(Table, EvaluationRow.__table__)
        session.connection().execute(insert(table).returning(table.c.id), evaluations)
    return [(row_id, applied) for row_id, (_, applied) in zip(stored_ids, results, strict=True)]


def save_timelines(session: Session, *, tenant_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Create or replace many epics' timelines in one statement (each row has work_item_id)."""
    if not rows:
        return
    table = cast(Table, EpicTimelineRow.__table__)
    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    excluded = statement.excluded
    # Core, not the ORM's bulk path: the ORM prepares every row again, which cost more than
    # the database's own work on a large backfill.
    session.connection().execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.work_item_id],
            set_={name: excluded[name] for name in TIMELINE_FIELDS},
        ),
        [{**row, "tenant_id": tenant_id} for row in rows],
    )
