"""The SQL behind the report: timelines in scope, and evaluation history folded per item."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, and_, func, or_, select, true, type_coerce
from sqlalchemy.orm import Session

from plugin.reports.figures import EpicFacts, HygieneCount, HygieneFacts, Period
from plugin.storage.backfills import EpicTimelineRow, ItemHygieneRow, ReportWatermarkRow
from plugin.storage.dialects import upsert_insert
from plugin.storage.models import EvaluationRow, Tenant, WorkItemRow

WATERMARK = "evaluations"
FOLD_LAG = timedelta(minutes=15)
"""Evaluations younger than this may still be committing (ids are handed out before commit), so
the watermark never passes them; folding is idempotent, so they are simply folded again."""
FOLD_BATCH = 50_000
_IN_CHUNK = 5_000
_FOLD_LOCK_KEY = 0x6C67_7265_7074  # "lgrept": one folder at a time across processes


@dataclass(frozen=True, slots=True)
class Scope:
    """Which items a report covers; None means every one."""

    tenant_id: int | None = None
    tracker: str | None = None
    project: str | None = None

    def where(self, tenant: Any, tracker: Any, project: Any) -> ColumnElement[bool]:
        """The filter on a table's tenant, tracker and project columns."""
        clauses: list[ColumnElement[bool]] = []
        if self.tenant_id is not None:
            clauses.append(tenant == self.tenant_id)
        if self.tracker:
            clauses.append(tracker == self.tracker)
        if self.project:
            clauses.append(project == self.project)
        return and_(true(), *clauses)


def load_epics(session: Session, scope: Scope, period: Period) -> list[EpicFacts]:
    """Timelines of live epics that start, finish or stay open within the period."""
    t = EpicTimelineRow
    start, end = period.start, period.end
    dialect = session.get_bind().dialect.name
    rows = session.execute(
        select(
            t.work_item_id,
            t.tenant_id,
            t.tracker,
            t.project,
            t.key,
            _instant(t.started_at, dialect),
            _instant(t.done_at, dialect),
            t.canceled,
            t.lean_ready_at_start,
            t.metric_at_done,
            t.outcome_review,
            _instant(t.reviewed_at, dialect),
            t.child_issues_done,
            t.new_value,
        )
        .join(WorkItemRow, WorkItemRow.id == t.work_item_id)
        .where(
            ~WorkItemRow.deleted,
            scope.where(t.tenant_id, t.tracker, t.project),
            or_(
                and_(t.started_at < end, or_(t.done_at.is_(None), t.done_at >= start)),
                and_(t.done_at >= start, t.done_at < end),
            ),
        )
    )
    return [EpicFacts._make(row) for row in rows]


def load_fixes(session: Session, scope: Scope, period: Period) -> list[HygieneFacts]:
    """Folded histories of live items whose first fix falls in the period."""
    h = ItemHygieneRow
    return _hygiene_facts(
        session,
        scope,
        and_(h.first_fix_at >= period.start, h.first_fix_at < period.end),
    )


def load_failing(session: Session, scope: Scope, limit: int) -> list[HygieneFacts]:
    """The live items failing now that failed first, oldest first."""
    h = ItemHygieneRow
    return _hygiene_facts(
        session,
        scope,
        and_(h.latest_status == "fail", h.first_fail_at.is_not(None)),
        order_by=(h.first_fail_at, h.latest_violations.desc(), h.work_item_id),
        limit=limit,
    )


def load_counts(session: Session, scope: Scope) -> list[HygieneCount]:
    """Per scope: live items whose latest verdict fails or is waived, and the failing rules."""
    h, w = ItemHygieneRow, WorkItemRow
    rows = session.execute(
        select(
            w.tenant_id,
            w.tracker,
            w.project,
            h.latest_status,
            func.count(),
            func.coalesce(func.sum(h.latest_violations), 0),
        )
        .join(w, w.id == h.work_item_id)
        .where(
            ~w.deleted,
            scope.where(w.tenant_id, w.tracker, w.project),
            h.latest_status.in_(("fail", "waived")),
        )
        .group_by(w.tenant_id, w.tracker, w.project, h.latest_status)
    )
    return [HygieneCount._make(row) for row in rows]


def _hygiene_facts(
    session: Session,
    scope: Scope,
    condition: ColumnElement[bool],
    *,
    order_by: Sequence[Any] = (),
    limit: int | None = None,
) -> list[HygieneFacts]:
    h, w = ItemHygieneRow, WorkItemRow
    dialect = session.get_bind().dialect.name
    query = (
        select(
            h.work_item_id,
            w.tenant_id,
            w.tracker,
            w.project,
            w.key,
            _instant(h.first_fail_at, dialect),
            _instant(h.first_fix_at, dialect),
            h.latest_status,
            h.latest_violations,
        )
        .join(w, w.id == h.work_item_id)
        .where(~w.deleted, scope.where(w.tenant_id, w.tracker, w.project), condition)
    )
    if order_by:
        query = query.order_by(*order_by)
    if limit is not None:
        query = query.limit(limit)
    return [HygieneFacts._make(row) for row in session.execute(query)]


def _instant(column: Any, dialect: str) -> Any:
    """A timestamp column read as the driver gives it where that is already an aware instant."""
    # psycopg returns timestamptz as aware datetimes; skipping the column type's per-value hook
    # halves the cost of loading a large workspace. SQLite stores text, which the type parses.
    if dialect == "postgresql":
        return type_coerce(column, DateTime(timezone=True))
    return column


def item_titles(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str, str, str]]:
    """Return (tracker, key, title, site) of the given work items."""
    wanted = sorted(set(ids))
    out: dict[int, tuple[str, str, str, str]] = {}
    w = WorkItemRow
    for chunk in _chunks(wanted):
        for row in session.execute(
            select(w.id, w.tracker, w.key, w.title, Tenant.site)
            .join(Tenant, Tenant.id == w.tenant_id)
            .where(w.id.in_(chunk))
        ):
            out[row.id] = (row.tracker, row.key, row.title, row.site)
    return out


def known_scopes(session: Session, scope: Scope) -> list[tuple[int, str, str]]:
    """Every (tenant, tracker, project) with an epic timeline or an evaluated item."""
    t, w = EpicTimelineRow, WorkItemRow
    found = {
        (row[0], row[1], row[2])
        for row in session.execute(
            select(t.tenant_id, t.tracker, t.project)
            .where(scope.where(t.tenant_id, t.tracker, t.project))
            .distinct()
        )
    }
    found |= {
        (row[0], row[1], row[2])
        for row in session.execute(
            select(w.tenant_id, w.tracker, w.project)
            .join(ItemHygieneRow, ItemHygieneRow.work_item_id == w.id)
            .where(~w.deleted, scope.where(w.tenant_id, w.tracker, w.project))
            .distinct()
        )
    }
    return sorted(found)


# Folding ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Fold:
    first_fail_at: datetime | None
    first_fix_at: datetime | None
    latest_at: datetime
    latest_id: int
    latest_status: str
    latest_violations: int
    stored: bool
    recompute: bool = False
    changed: bool = False


def refresh_hygiene(session: Session, *, now: datetime, batch: int = FOLD_BATCH) -> int:
    """Fold evaluations newer than the watermark into ``item_hygiene``; return rows folded."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_FOLD_LOCK_KEY)))
    mark_row = session.get(ReportWatermarkRow, WATERMARK)
    mark = mark_row.value if mark_row is not None else 0
    young = now - FOLD_LAG
    folded = 0
    while True:
        e = EvaluationRow
        rows = session.execute(
            select(e.id, e.work_item_id, e.evaluated_at, e.status, e.violations)
            .where(e.id > mark)
            .order_by(e.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        _fold(session, rows)
        folded += len(rows)
        first_young = next((row.id for row in rows if row.evaluated_at >= young), None)
        if first_young is not None:
            mark = max(mark, first_young - 1)
            break
        mark = rows[-1].id
        if len(rows) < batch:
            break
    _save_mark(session, mark, now)
    return folded


def _fold(session: Session, rows: Sequence[Any]) -> None:
    h = ItemHygieneRow
    ids = sorted({row.work_item_id for row in rows})
    state: dict[int, _Fold] = {}
    for chunk in _chunks(ids):
        for stored in session.scalars(select(h).where(h.work_item_id.in_(chunk))):
            state[stored.work_item_id] = _Fold(
                stored.first_fail_at,
                stored.first_fix_at,
                stored.latest_at,
                stored.latest_id,
                stored.latest_status,
                stored.latest_violations,
                stored=True,
            )
    for row in sorted(rows, key=lambda r: (r.work_item_id, r.evaluated_at, r.id)):
        fold = state.get(row.work_item_id)
        if fold is None:
            fold = state[row.work_item_id] = _Fold(
                None, None, row.evaluated_at, row.id, row.status, row.violations, stored=False
            )
        fold.changed = True
        if (row.evaluated_at, row.id) >= (fold.latest_at, fold.latest_id):
            fold.latest_at, fold.latest_id = row.evaluated_at, row.id
            fold.latest_status, fold.latest_violations = row.status, row.violations
        if row.status == "fail":
            if fold.first_fail_at is None or row.evaluated_at < fold.first_fail_at:
                # Passes folded earlier may lie after this new first failure; look again.
                fold.recompute = fold.recompute or fold.stored
                fold.first_fail_at = row.evaluated_at
                if fold.first_fix_at is not None and fold.first_fix_at <= row.evaluated_at:
                    fold.first_fix_at = None
                    fold.recompute = True
        elif (
            row.status == "pass"
            and fold.first_fail_at is not None
            and row.evaluated_at > fold.first_fail_at
            and (fold.first_fix_at is None or row.evaluated_at < fold.first_fix_at)
        ):
            fold.first_fix_at = row.evaluated_at
    for work_item_id, fold in state.items():
        if fold.recompute and fold.first_fail_at is not None:
            fold.first_fix_at = session.scalar(
                select(func.min(EvaluationRow.evaluated_at)).where(
                    EvaluationRow.work_item_id == work_item_id,
                    EvaluationRow.status == "pass",
                    EvaluationRow.evaluated_at > fold.first_fail_at,
                )
            )
    values = [
        {
            "work_item_id": work_item_id,
            "first_fail_at": fold.first_fail_at,
            "first_fix_at": fold.first_fix_at,
            "latest_at": fold.latest_at,
            "latest_id": fold.latest_id,
            "latest_status": fold.latest_status,
            "latest_violations": fold.latest_violations,
        }
        for work_item_id, fold in state.items()
        if fold.changed
    ]
    if not values:
        return
    insert = upsert_insert(session, ItemHygieneRow)
    excluded = insert.excluded
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[h.work_item_id],
            set_={
                "first_fail_at": excluded.first_fail_at,
                "first_fix_at": excluded.first_fix_at,
                "latest_at": excluded.latest_at,
                "latest_id": excluded.latest_id,
                "latest_status": excluded.latest_status,
                "latest_violations": excluded.latest_violations,
            },
        ),
        values,
    )


def _save_mark(session: Session, mark: int, now: datetime) -> None:
    insert = upsert_insert(session, ReportWatermarkRow)
    session.execute(
        insert.values(name=WATERMARK, value=mark, updated_at=now).on_conflict_do_update(
            index_elements=[ReportWatermarkRow.name], set_={"value": mark, "updated_at": now}
        )
    )


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
