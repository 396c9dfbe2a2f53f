"""Evaluation history: every verdict on every item, newest last."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased, undefer

from plugin.storage.models import EvaluationRow, WorkItemRow
from rules.result import Evaluation, Status


def evaluation_values(
    work_item_id: int, evaluation: Evaluation, evaluated_at: datetime
) -> dict[str, Any]:
    """Return the columns of the history row that records ``evaluation``."""
    failing = list(dict.fromkeys(node.name for node in evaluation.failing_rules()))
    present = sorted(
        {
            node.field or node.name
            for node in evaluation.tree.walk()
            if node.kind == "field" and node.status is Status.PASS
        }
    )
    return {
        "work_item_id": work_item_id,
        "evaluated_at": evaluated_at,
        "ruleset_name": evaluation.ruleset,
        "ruleset_version": evaluation.ruleset_version,
        "status": evaluation.status.value,
        "violations": len(failing),
        "failing_rules": failing,
        "fields_present": present,
        "tree": evaluation.to_dict(),
    }


def record_evaluation(
    session: Session, *, work_item: WorkItemRow, evaluation: Evaluation, evaluated_at: datetime
) -> EvaluationRow:
    """Append an evaluation to the item's history."""
    row = EvaluationRow(**evaluation_values(work_item.id, evaluation, evaluated_at))
    session.add(row)
    session.flush()
    return row


def latest_evaluation(session: Session, *, work_item_id: int) -> EvaluationRow | None:
    """Return the item's newest evaluation, tree loaded."""
    return session.scalars(
        select(EvaluationRow)
        .options(undefer(EvaluationRow.tree))
        .where(EvaluationRow.work_item_id == work_item_id)
        .order_by(EvaluationRow.evaluated_at.desc(), EvaluationRow.id.desc())
        .limit(1)
    ).first()


def latest_results(
    session: Session, *, tenant_id: int | None = None, limit: int = 50
) -> list[tuple[WorkItemRow, EvaluationRow]]:
    """Return live items with their newest evaluation, most recently evaluated first."""
    newer = aliased(EvaluationRow)
    # Walk evaluations newest first (the evaluated_at index) and keep those no later
    # evaluation of the same item supersedes; this stops after ``limit`` rows instead of
    # grouping the whole history.
    superseded = exists().where(
        newer.work_item_id == EvaluationRow.work_item_id,
        or_(
            newer.evaluated_at > EvaluationRow.evaluated_at,
            and_(newer.evaluated_at == EvaluationRow.evaluated_at, newer.id > EvaluationRow.id),
        ),
    )
    query = (
        select(WorkItemRow, EvaluationRow)
        .join(EvaluationRow, EvaluationRow.work_item_id == WorkItemRow.id)
        .options(undefer(EvaluationRow.tree))
        .where(~WorkItemRow.deleted, ~superseded)
        .order_by(EvaluationRow.evaluated_at.desc(), EvaluationRow.id.desc())
        .limit(limit)
    )
    if tenant_id is not None:
        query = query.where(WorkItemRow.tenant_id == tenant_id)
    return [(item, evaluation) for item, evaluation in session.execute(query)]
