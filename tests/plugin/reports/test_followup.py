"""Live timelines and outcome-review reminders: the worker's follow-up sweep."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from plugin.cards import Card, render_markdown
from plugin.followup import reminder_due, send_due_reminders, sync_timelines
from plugin.reports.history import dates_in, review_of, verdict
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import (
    CardState,
    Tenant,
    get_card,
    get_or_create_tenant,
    record_evaluation,
    save_card,
    upsert_work_item,
)
from plugin.storage.backfills import EpicTimelineRow, OutcomeReminderRow
from plugin.trackers.base import TrackerClient
from rules import Section, StatusCategory, WorkItem, evaluate, preset

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
READY = (
    "## Hypothesis\nWe believe one-click upgrades will result in more upgrades; we will know "
    "when upgrades rise.\n## Success metric\nUpgrades from 4% to 9% by 2026-05-15.\n"
    "## Customer problem\nAdmins cannot upgrade without a sales call."
)


class FakeClient(TrackerClient):
    """Records every write; answers nothing else."""

    tracker: ClassVar[str] = "jira"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def identity(self) -> str:
        return "bot"

    def fetch_item(self, key: str, kind: str) -> Mapping[str, Any] | None:
        return None

    def find_card(self, key: str, kind: str) -> str | None:
        return None

    def post_card(self, key: str, kind: str, card: Card) -> str:
        self.calls.append(("post", key, render_markdown(card)))
        return "c-1"

    def edit_card(self, key: str, kind: str, comment_id: str, card: Card) -> None:
        self.calls.append(("edit", key, render_markdown(card)))

    def delete_card(self, key: str, kind: str, comment_id: str) -> None:
        self.calls.append(("delete", key, comment_id))

    def publish_status(self, key: str, kind: str, value: Mapping[str, Any]) -> None:
        self.calls.append(("status", key, ""))

    def set_label(self, key: str, kind: str, label: str, present: bool) -> None:
        self.calls.append(("label", key, label))


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def runtime(tmp_path: Path, client: FakeClient) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(Settings(instance_path=str(tmp_path)))
    runtime.client_factory = lambda tenant: client
    runtime.database.upgrade()
    yield runtime
    runtime.database.dispose()


def _item(category: StatusCategory, *, when: datetime, text: str = READY, **extra: Any) -> WorkItem:
    from rules.sections import parse_description

    description, sections = parse_description(text, "markdown")
    return WorkItem(
        tracker="jira",
        key="SHOP-1",
        id="10001",
        title="Upgrades",
        kind="epic",
        project="SHOP",
        description=description,
        sections=sections,
        status={"todo": "To Do", "in_progress": "In Progress", "done": "Done"}[category.value],
        status_category=category,
        created=T0 - timedelta(days=30),
        updated=when,
        **extra,
    )


def _see(runtime: Runtime, item: WorkItem) -> None:
    """What the worker stores for a snapshot: the item and its evaluation."""
    with runtime.database.session() as session:
        tenant = get_or_create_tenant(session, tracker="jira", site="https://acme.atlassian.net")
        row, _ = upsert_work_item(session, tenant_id=tenant.id, item=item, now=item.updated or T0)
        record_evaluation(
            session,
            work_item=row,
            evaluation=evaluate(item, preset("lean")),
            evaluated_at=item.updated or T0,
        )


def _timeline(runtime: Runtime) -> EpicTimelineRow:
    with runtime.database.session() as session:
        return session.scalars(select(EpicTimelineRow)).one()


def test_the_sweep_dates_a_start_and_a_delivery_it_sees_happen(runtime: Runtime) -> None:
    _see(runtime, _item(StatusCategory.TODO, when=T0))
    sync_timelines(runtime, now=T0)
    _see(runtime, _item(StatusCategory.IN_PROGRESS, when=T0 + timedelta(days=1)))
    sync_timelines(runtime, now=T0)
    _see(runtime, _item(StatusCategory.DONE, when=T0 + timedelta(days=10)))
    sync_timelines(runtime, now=T0)

    timeline = _timeline(runtime)
    assert (timeline.started_at, timeline.done_at) == (
        T0 + timedelta(days=1),
        T0 + timedelta(days=10),
    )
    assert (timeline.lean_ready_at_start, timeline.metric_at_done) == (True, True)
    assert (timeline.source, timeline.lean_ready_note) == ("live", "seen as it started")
    with runtime.database.session() as session:
        reminder = session.scalars(select(OutcomeReminderRow)).one()
        # The success metric names 2026-05-15: the reminder waits for that date.
        assert (reminder.due_at, reminder.state) == (datetime(2026, 5, 15, tzinfo=UTC), "pending")
        assert reminder.basis == "the date in its success metric (2026-05-15)"


def test_an_epic_first_seen_in_progress_gets_no_invented_start(runtime: Runtime) -> None:
    _see(runtime, _item(StatusCategory.IN_PROGRESS, when=T0))
    sync_timelines(runtime, now=T0)

    timeline = _timeline(runtime)
    assert (timeline.started_at, timeline.lean_ready_at_start) == (None, None)
    assert timeline.lean_ready_note == "started before leanguard saw it; run a backfill"


def test_a_due_reminder_goes_on_the_items_one_card(runtime: Runtime, client: FakeClient) -> None:
    text = READY.replace(" by 2026-05-15", "")
    _see(runtime, _item(StatusCategory.IN_PROGRESS, when=T0, text=text))
    sync_timelines(runtime, now=T0)
    _see(runtime, _item(StatusCategory.DONE, when=T0 + timedelta(days=2), text=text))
    with runtime.database.session() as session:
        tenant = session.scalars(select(Tenant)).one()
        save_card(
            session,
            work_item_id=1,
            comment_id="c-9",
            content_hash="earlier",
            state=CardState.RESOLVED,
            label_applied=False,
            now=T0,
        )

    assert send_due_reminders(runtime, T0 + timedelta(days=3)) == 0
    assert send_due_reminders(runtime, T0 + timedelta(days=33)) == 1

    assert [(kind, key) for kind, key, _ in client.calls] == [("edit", "SHOP-1")]
    body = client.calls[0][2]
    assert "outcome review due" in body
    assert "30 days after it was done" in body
    with runtime.database.session() as session:
        reminder = session.scalars(select(OutcomeReminderRow)).one()
        card = get_card(session, work_item_id=1)
        assert card is not None
        assert (reminder.state, card.comment_id, card.content_hash) == ("sent", "c-9", "earlier")
        assert tenant.tracker == "jira"


def test_a_review_recorded_in_time_cancels_the_reminder(
    runtime: Runtime, client: FakeClient
) -> None:
    _see(runtime, _item(StatusCategory.IN_PROGRESS, when=T0))
    sync_timelines(runtime, now=T0)
    _see(runtime, _item(StatusCategory.DONE, when=T0 + timedelta(days=2)))
    sync_timelines(runtime, now=T0)
    reviewed = READY + "\n## Outcome\nInconclusive: the metric moved within noise."
    _see(runtime, _item(StatusCategory.DONE, when=T0 + timedelta(days=9), text=reviewed))

    assert send_due_reminders(runtime, datetime(2026, 6, 1, tzinfo=UTC)) == 0

    assert client.calls == []
    timeline = _timeline(runtime)
    assert (timeline.outcome_review, timeline.reviewed_at) == (
        "inconclusive",
        T0 + timedelta(days=9),
    )
    with runtime.database.session() as session:
        assert session.scalars(select(OutcomeReminderRow.state)).one() == "canceled"


def test_a_reminder_without_a_card_posts_the_one_card(runtime: Runtime, client: FakeClient) -> None:
    _see(runtime, _item(StatusCategory.IN_PROGRESS, when=T0))
    sync_timelines(runtime, now=T0)
    _see(runtime, _item(StatusCategory.DONE, when=T0 + timedelta(days=2)))

    assert send_due_reminders(runtime, datetime(2026, 5, 16, tzinfo=UTC)) == 1

    assert [(kind, key) for kind, key, _ in client.calls] == [("post", "SHOP-1")]
    with runtime.database.session() as session:
        card = get_card(session, work_item_id=1)
        assert card is not None and (card.comment_id, card.state) == ("c-1", "resolved")


def test_reminder_dates_come_from_the_metric_only_when_later_than_done() -> None:
    item = _item(StatusCategory.DONE, when=T0)
    lean = preset("lean")

    assert reminder_due(item, lean, T0)[0] == datetime(2026, 5, 15, tzinfo=UTC)
    late = T0.replace(year=2027)
    assert reminder_due(item, lean, late) == (
        late + timedelta(days=30),
        "30 days after it was done",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Validated: conversion rose to 2.6%.", "validated"),
        ("Not validated — nobody used it.", "invalidated"),
        ("The hypothesis was invalidated.", "invalidated"),
        ("Inconclusive; the test ran too short.", "inconclusive"),
        ("We shipped it.", None),
    ],
)
def test_verdicts_are_read_from_review_text(text: str, expected: str | None) -> None:
    assert verdict(text) == expected


def test_reviews_are_found_in_outcome_sections_and_fields() -> None:
    sections = (Section("Learnings", "Refuted: the upgrade rate did not move."),)

    assert review_of(sections, {}) == "invalidated"
    assert review_of((), {"Outcome review": "Confirmed"}) == "validated"
    assert review_of((Section("Notes", "validated"),), {}) is None


def test_dates_are_read_in_three_spellings() -> None:
    assert dates_in("by 2026-06-30, or 1 July 2026, or March 3rd, 2027; not 2026-02-30") == [
        date(2026, 6, 30),
        date(2026, 7, 1),
        date(2027, 3, 3),
    ]


def test_the_sweep_runs_at_most_once_per_interval(runtime: Runtime) -> None:
    _see(runtime, _item(StatusCategory.TODO, when=T0))
    first = send_due_reminders(runtime, T0)
    _see(runtime, replace(_item(StatusCategory.IN_PROGRESS, when=T0 + timedelta(seconds=5))))
    send_due_reminders(runtime, T0 + timedelta(seconds=5))

    assert first == 0
    assert _timeline(runtime).started_at is None
    send_due_reminders(runtime, T0 + timedelta(seconds=40))
    assert _timeline(runtime).started_at == T0 + timedelta(seconds=5)
