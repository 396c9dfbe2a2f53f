"""After delivery: keep epic timelines current and remind teams to record the outcome review."""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from plugin.cards import Card, CardLine, build_card, card_hash
from plugin.processing import backoff
from plugin.reports.history import (
    CANCELED_WORDS,
    found_fields,
    is_new_value,
    lean_ready,
    metric_date,
    review_of,
    start_of,
)
from plugin.runtime import Runtime
from plugin.storage import CardState, Tenant, WorkItemRow, get_card, latest_evaluation, save_card
from plugin.storage.backfills import (
    EpicTimelineRow,
    ReminderState,
    cancel_reminder,
    due_reminders,
    finish_reminder,
    save_timeline,
    schedule_reminder,
)
from plugin.trackers.errors import TrackerError
from rules import Evaluation, RuleSet, StatusCategory, WorkItem

log = logging.getLogger(__name__)

REVIEW_DAYS = 30
"""Days after done when a review is due, unless the success metric names its own date."""
SWEEP_INTERVAL = timedelta(seconds=30)
SYNC_BATCH = 500
REMINDER_RULE = "outcome-review"
EPIC_KINDS = ("epic", "project")

_last_sweep: dict[int, tuple[weakref.ref[Runtime], datetime]] = {}
_sweep_guard = threading.Lock()


def reminder_due(
    item: WorkItem, ruleset: RuleSet, done_at: datetime, review_days: int = REVIEW_DAYS
) -> tuple[datetime, str]:
    """When to remind about an epic's outcome review, and why that date."""
    day = metric_date(item, ruleset)
    if day is not None and start_of(day) > done_at:
        return start_of(day), f"the date in its success metric ({day.isoformat()})"
    return done_at + timedelta(days=review_days), f"{review_days} days after it was done"


def send_due_reminders(
    runtime: Runtime, now: datetime | None = None, *, interval: timedelta = SWEEP_INTERVAL
) -> int:
    """The worker's follow-up sweep: sync timelines, then post reminders that are due."""
    now = now or datetime.now(UTC)
    with _sweep_guard:
        # Keyed by id but checked by identity: a new runtime may reuse a dead one's id.
        owner, last = _last_sweep.get(id(runtime), (None, None))
        if (
            owner is not None
            and owner() is runtime
            and last is not None
            and timedelta(0) <= now - last < interval
        ):
            return 0
        _last_sweep[id(runtime)] = (weakref.ref(runtime), now)
    sync_timelines(runtime, now=now)
    with runtime.database.session() as session:
        due = [(r.id, r.work_item_id, r.basis) for r in due_reminders(session, now=now)]
    sent = 0
    for reminder_id, work_item_id, basis in due:
        try:
            sent += _send(runtime, reminder_id, work_item_id, basis, now)
        except Exception:
            # One bad item must not stop the others; the reminder stays due and is retried.
            log.exception("reminder.crashed", extra={"reminder": reminder_id})
    return sent


def sync_timelines(
    runtime: Runtime, *, now: datetime, review_days: int = REVIEW_DAYS, limit: int = SYNC_BATCH
) -> int:
    """Update the timeline of every epic whose item changed since it was last synced."""
    synced = 0
    with runtime.database.session() as session:
        rows = session.execute(
            select(WorkItemRow, EpicTimelineRow)
            .outerjoin(EpicTimelineRow, EpicTimelineRow.work_item_id == WorkItemRow.id)
            .where(
                WorkItemRow.kind.in_(EPIC_KINDS),
                ~WorkItemRow.deleted,
                or_(
                    EpicTimelineRow.id.is_(None),
                    EpicTimelineRow.synced_at < WorkItemRow.updated_at,
                ),
            )
            .limit(limit)
        ).all()
        for row, timeline in rows:
            item = row.item()
            latest = latest_evaluation(session, work_item_id=row.id)
            if latest is None:
                continue
            ruleset = runtime.catalog.select(item.tracker, item.project)
            when = item.updated or row.updated_at
            values = live_timeline(timeline, item, latest.evaluation(), when=when)
            values["synced_at"] = row.updated_at
            save_timeline(session, work_item_id=row.id, tenant_id=row.tenant_id, values=values)
            _follow_up(session, row.id, item, ruleset, values, review_days, now)
            synced += 1
    return synced


def live_timeline(
    timeline: EpicTimelineRow | None, item: WorkItem, evaluation: Evaluation, *, when: datetime
) -> dict[str, Any]:
    """The timeline after seeing the item's current snapshot, changed at ``when``."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    category = item.status_category.value if item.status_category else None
    values: dict[str, Any] = {
        "tracker": item.tracker,
        "project": item.project,
        "key": item.key,
        "new_value": is_new_value(item),
        "last_status_category": category,
    }
    if timeline is None:
        # First sight: a start or a delivery that happened before now cannot be dated; a
        # backfill dates them from the history.
        values.update(source="live", created_at=item.created, lean_ready_note="")
        if category in (StatusCategory.IN_PROGRESS, StatusCategory.DONE):
            values["lean_ready_note"] = "started before leanguard saw it; run a backfill"
        review = review_of(item.sections, item.fields)
        values.update(outcome_review=review, reviewed_at=when if review else None)
        return values
    moved = timeline.last_status_category != category
    if (
        timeline.started_at is None
        and moved
        and timeline.last_status_category in (None, StatusCategory.TODO)
        and category in (StatusCategory.IN_PROGRESS, StatusCategory.DONE)
    ):
        values.update(
            started_at=when,
            lean_ready_at_start=lean_ready(evaluation),
            lean_ready_note="seen as it started",
        )
    if category == StatusCategory.DONE:
        if timeline.done_at is None and moved:
            values.update(
                done_at=when,
                canceled=item.status.casefold() in CANCELED_WORDS,
                metric_at_done="success_metric" in found_fields(evaluation),
            )
    elif timeline.done_at is not None:
        values.update(done_at=None, canceled=False, metric_at_done=None)
    review = review_of(item.sections, item.fields)
    if review is not None and review != timeline.outcome_review:
        values.update(outcome_review=review, reviewed_at=when)
    return values


def _follow_up(
    session: Session,
    work_item_id: int,
    item: WorkItem,
    ruleset: RuleSet,
    values: dict[str, Any],
    review_days: int,
    now: datetime,
) -> None:
    # The row was just written with a Core upsert; reload it over the stale identity-map copy.
    timeline = session.scalars(
        select(EpicTimelineRow).where(EpicTimelineRow.work_item_id == work_item_id),
        execution_options={"populate_existing": True},
    ).one()
    delivered = timeline.done_at is not None and not timeline.canceled
    if not delivered or timeline.outcome_review:
        cancel_reminder(session, work_item_id=work_item_id)
        return
    if "done_at" in values and timeline.done_at is not None:
        due, basis = reminder_due(item, ruleset, timeline.done_at, review_days)
        schedule_reminder(session, work_item_id=work_item_id, due_at=due, basis=basis, now=now)


def reminder_line(done_at: datetime | None, basis: str) -> CardLine:
    """The card line that asks for the outcome review."""
    when = f" on {done_at.date().isoformat()}" if done_at else ""
    return CardLine(
        status="fail",
        rule=REMINDER_RULE,
        severity="info",
        text=f"This epic was delivered{when} and no outcome review is recorded yet (due {basis}).",
        fix='Add a section headed "Outcome" that says validated, invalidated or inconclusive, '
        "and what the success metric showed.",
        why="Only a look back tells whether the bet paid off, and what to do next.",
    )


def reminder_card(evaluation: Evaluation, line: CardLine, *, details_url: str) -> Card:
    """The item's card with the reminder on it."""
    card = build_card(evaluation, details_url=details_url, show_passed=True)
    return replace(card, headline="leanguard: outcome review due", lines=(line, *card.lines))


def _send(runtime: Runtime, reminder_id: int, work_item_id: int, basis: str, now: datetime) -> int:
    with runtime.database.session() as session:
        row = session.get(WorkItemRow, work_item_id)
        timeline = session.scalars(
            select(EpicTimelineRow).where(EpicTimelineRow.work_item_id == work_item_id)
        ).first()
        latest = latest_evaluation(session, work_item_id=work_item_id)
        if (
            row is None
            or row.deleted
            or latest is None
            or timeline is None
            or timeline.done_at is None
            or timeline.outcome_review
        ):
            finish_reminder(session, reminder_id=reminder_id, state=ReminderState.CANCELED, now=now)
            return 0
        tenant = session.get(Tenant, row.tenant_id)
        card_row = get_card(session, work_item_id=work_item_id)
        existing = (
            (card_row.comment_id, card_row.content_hash, card_row.state, card_row.label_applied)
            if card_row
            else None
        )
        item, evaluation, done_at = row.item(), latest.evaluation(), timeline.done_at
        if tenant is not None:
            session.expunge(tenant)
    client = runtime.client_for(tenant) if tenant is not None else None
    if client is None:
        with runtime.database.session() as session:
            finish_reminder(
                session,
                reminder_id=reminder_id,
                state=ReminderState.FAILED,
                now=now,
                error="no API credentials for the item's site",
            )
        return 0
    details = runtime.details_url(item)
    card = reminder_card(evaluation, reminder_line(done_at, basis), details_url=details)
    kind = "project" if item.kind == "project" and item.tracker == "linear" else "issue"
    target = item.id if item.tracker == "linear" and item.id else item.key
    try:
        comment_id = existing[0] if existing and existing[2] != CardState.DELETED else None
        if comment_id is None:
            comment_id = client.post_card(target, kind, card)
        else:
            client.edit_card(target, kind, comment_id, card)
    except TrackerError as exc:
        with runtime.database.session() as session:
            retry_at = now + timedelta(seconds=backoff(1, getattr(exc, "retry_after", None)))
            finish_reminder(
                session,
                reminder_id=reminder_id,
                state=ReminderState.PENDING if exc.retryable else ReminderState.FAILED,
                now=now,
                error=f"{type(exc).__name__}: {exc}",
                retry_at=retry_at if exc.retryable else None,
            )
        return 0
    failing = bool(evaluation.failing_rules())
    with runtime.database.session() as session:
        # The stored hash stays the evaluation's own: the next unchanged evaluation leaves the
        # reminder standing, a changed one rewrites the card as usual.
        save_card(
            session,
            work_item_id=work_item_id,
            comment_id=comment_id,
            content_hash=existing[1]
            if existing
            else card_hash(build_card(evaluation, details_url=details, show_passed=False)),
            state=CardState.OPEN if failing else CardState.RESOLVED,
            label_applied=existing[3] if existing else False,
            now=now,
        )
        finish_reminder(session, reminder_id=reminder_id, state=ReminderState.SENT, now=now)
    log.info("reminder.sent", extra={"item": item.key})
    return 1


__all__ = [
    "due_reminders",
    "live_timeline",
    "reminder_due",
    "send_due_reminders",
    "sync_timelines",
]
