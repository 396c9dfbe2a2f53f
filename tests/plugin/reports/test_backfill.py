"""Backfill against fake trackers whose every request is checked against the real contracts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from support.contracts import tracker_mock
from support.health_data import at

from plugin.backfill import Backfiller, BackfillError
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import EvaluationRow, WorkItemRow
from plugin.storage.backfills import BackfillRow, EpicTimelineRow, OutcomeReminderRow

CLOUD = "https://acme.atlassian.net"
LINEAR = "https://api.linear.app/graphql"
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
NAMES = {"summary": "Summary", "customfield_10050": "Customer problem"}
STATUSES = [
    {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
    {"id": "3", "name": "In Progress", "statusCategory": {"key": "indeterminate"}},
    {"id": "10001", "name": "Done", "statusCategory": {"key": "done"}},
]
FULL = (
    "h2. Hypothesis\nWe believe one-click upgrades will result in more upgrades; we will know "
    "when self-serve upgrades rise.\n"
    "h2. Success metric\nSelf-serve upgrades from 4% to 9% of admins by 2026-06-30.\n"
)
OUTCOME = "h2. Outcome\nValidated: upgrades reached 9.4%.\n"


def _status(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "statusCategory": {"key": key}}


def _history(when: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"id": when, "created": when + "T10:00:00.000+0000", "items": list(items)}


def _to_status(status_id: str, name: str) -> dict[str, Any]:
    return {"field": "status", "fieldtype": "jira", "to": status_id, "toString": name}


def _description(before: str, after: str) -> dict[str, Any]:
    return {
        "field": "description",
        "fieldtype": "jira",
        "fromString": before,
        "toString": after,
    }


def _epic(key: str, status: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    fields = {
        "summary": f"Epic {key}",
        "issuetype": {"name": "Epic", "hierarchyLevel": 1},
        "project": {"key": "SHOP"},
        "status": status,
        "description": description,
        "labels": [],
        "customfield_10050": "Team admins cannot upgrade without a sales call.",
        "created": "2026-01-05T09:00:00.000+0000",
        "updated": "2026-03-05T10:00:00.000+0000",
    }
    fields.update(extra.pop("fields", {}))
    return {"id": key.replace("SHOP-", "100"), "key": key, "fields": fields, **extra}


SHOP_1 = _epic(
    "SHOP-1",
    _status("Done", "done"),
    FULL + OUTCOME,
    changelog={
        "startAt": 0,
        "maxResults": 4,
        "total": 4,
        "histories": [
            _history("2026-02-01", _to_status("3", "In Progress")),
            _history("2026-02-10", _description(FULL.split("h2. Success")[0], FULL)),
            _history("2026-03-01", _to_status("10001", "Done")),
            _history("2026-03-05", _description(FULL, FULL + OUTCOME)),
        ],
    },
)
SHOP_2 = _epic(
    "SHOP-2",
    _status("In Progress", "indeterminate"),
    FULL,
    changelog={
        "startAt": 0,
        "maxResults": 1,
        "total": 1,
        "histories": [_history("2026-03-01", _to_status("3", "In Progress"))],
    },
)
SHOP_3 = _epic(
    "SHOP-3",
    _status("Done", "done"),
    FULL,
    fields={"resolution": {"name": "Won't Do"}},
    changelog={"startAt": 0, "maxResults": 1, "total": 2, "histories": []},
)
SHOP_3_CHANGELOG = {
    "startAt": 0,
    "maxResults": 100,
    "total": 2,
    "isLast": True,
    "values": [
        _history("2026-02-20", _to_status("3", "In Progress")),
        _history("2026-03-02", _to_status("10001", "Done")),
    ],
}


def _children(*parents: str) -> dict[str, Any]:
    issues = [
        {
            "id": f"2{n}",
            "key": f"SHOP-{20 + n}",
            "fields": {"issuetype": {"name": "Story"}, "parent": {"key": parent}},
        }
        for n, parent in enumerate(parents)
    ]
    return {"issues": issues, "isLast": True}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        instance_path=str(tmp_path),
        jira_url=CLOUD,
        jira_email="bot@acme.test",
        jira_api_token="token",
        linear_api_key="lin_api_key",
    )
    runtime = Runtime.from_settings(settings)
    runtime.database.upgrade()
    yield runtime
    runtime.database.dispose()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _first_page(fake: Any, *, rate_limited: bool = False) -> None:
    search = f"{CLOUD}/rest/api/3/search/jql"
    fake.post(f"{CLOUD}/rest/api/3/search/approximate-count", json={"count": 3})
    if rate_limited:
        fake.post(search, status=429, headers={"Retry-After": "7"}, json={"errorMessages": []})
    fake.post(
        search,
        json={"issues": [SHOP_1, SHOP_2], "names": NAMES, "nextPageToken": "T2", "isLast": False},
    )
    fake.get(f"{CLOUD}/rest/api/3/status", json=STATUSES)
    fake.post(search, json=_children("SHOP-1", "SHOP-1", "SHOP-9"))
    fake.get(f"{CLOUD}/rest/api/3/field", json=[{"id": "summary", "name": "Summary"}])


def _second_page(fake: Any) -> None:
    search = f"{CLOUD}/rest/api/3/search/jql"
    fake.post(search, json={"issues": [SHOP_3], "names": NAMES, "isLast": True})
    fake.post(search, json=_children())
    fake.get(f"{CLOUD}/rest/api/3/issue/SHOP-3/changelog", json=SHOP_3_CHANGELOG)


def test_jira_backfill_replays_the_changelog_and_waits_out_a_rate_limit(runtime: Runtime) -> None:
    sleeps = Sleeps()
    backfiller = Backfiller(runtime, sleep=sleeps, clock=lambda: NOW)
    progress: list[tuple[int, int | None]] = []
    with tracker_mock(ordered=True) as fake:
        _first_page(fake, rate_limited=True)
        _second_page(fake)
        tenant = backfiller.tenant_for("jira")
        record = backfiller.start(tenant, "SHOP")
        backfiller.run(tenant, record, lambda done, total: progress.append((done, total)))
        bodies = [json.loads(c.request.body) for c in fake.calls if c.request.body]

    assert sleeps == [7.0]
    assert progress == [(2, 3), (3, 3)]
    assert bodies[1]["expand"] == "names,changelog"
    assert bodies[1]["jql"] == 'project = "SHOP" AND issuetype = Epic ORDER BY key'
    assert bodies[3]["jql"] == 'parent in ("SHOP-1", "SHOP-2") AND statusCategory = Done'
    with runtime.database.session() as session:
        timelines = {t.key: t for t in session.scalars(select(EpicTimelineRow))}
        row = session.scalars(select(BackfillRow)).one()
        evaluations = session.scalar(select(func.count()).select_from(EvaluationRow))
        reminders = session.scalar(select(func.count()).select_from(OutcomeReminderRow))
        (row_state, row_total, row_done, row_pages) = (
            row.state,
            row.items_total,
            row.items_evaluated,
            row.pages_done,
        )
        (row_token, row_waited) = (row.page_token, row.waited_s)
    assert (row_state, row_total, row_done, row_pages, row_token) == ("done", 3, 3, 2, None)
    assert row_waited == 7.0
    assert evaluations == 3
    # SHOP-1 is reviewed, SHOP-3 was cancelled, SHOP-2 is not done: nothing to remind about.
    assert reminders == 0
    shop1 = timelines["SHOP-1"]
    assert (shop1.started_at, shop1.done_at) == (at("2026-02-01 10:00"), at("2026-03-01 10:00"))
    # The success metric was added on 02-10, after the start on 02-01.
    assert (shop1.lean_ready_at_start, shop1.lean_ready_note) == (
        False,
        "replayed from the changelog",
    )
    assert (shop1.outcome_review, shop1.reviewed_at) == ("validated", at("2026-03-05 10:00"))
    assert (shop1.metric_at_done, shop1.child_issues_done, shop1.source) == (True, 2, "backfill")
    shop2 = timelines["SHOP-2"]
    assert (shop2.started_at, shop2.done_at, shop2.lean_ready_at_start) == (
        at("2026-03-01 10:00"),
        None,
        True,
    )
    shop3 = timelines["SHOP-3"]
    assert (shop3.started_at, shop3.done_at, shop3.canceled) == (
        at("2026-02-20 10:00"),
        at("2026-03-02 10:00"),
        True,
    )


def test_an_interrupted_backfill_resumes_from_the_stored_cursor(runtime: Runtime) -> None:
    backfiller = Backfiller(runtime, sleep=Sleeps(), clock=lambda: NOW)
    with tracker_mock(ordered=True) as fake:
        _first_page(fake)
        fake.post(
            f"{CLOUD}/rest/api/3/search/jql",
            status=400,
            json={"errorMessages": ["The JQL query is broken."]},
        )
        tenant = backfiller.tenant_for("jira")
        record = backfiller.start(tenant, "SHOP")
        with pytest.raises(BackfillError, match="JQL query is broken"):
            backfiller.run(tenant, record)
    with runtime.database.session() as session:
        stopped = session.scalars(select(BackfillRow)).one()
        assert (stopped.state, stopped.page_token, stopped.items_evaluated) == ("failed", "T2", 2)

    with tracker_mock(ordered=True) as fake:
        _second_page(fake)
        resumed = backfiller.start(tenant, "SHOP")
        backfiller.run(tenant, resumed)
        sent = [json.loads(c.request.body) for c in fake.calls if c.request.body]

    assert resumed.id == record.id
    assert sent[0]["nextPageToken"] == "T2"
    with runtime.database.session() as session:
        done = session.scalars(select(BackfillRow)).one()
        assert (done.state, done.items_evaluated, done.pages_done) == ("done", 3, 2)
        assert session.scalar(select(func.count()).select_from(WorkItemRow)) == 3


def test_a_running_backfill_is_not_started_twice(runtime: Runtime) -> None:
    backfiller = Backfiller(runtime, clock=lambda: NOW)
    with runtime.database.session() as session:
        from plugin.storage import get_or_create_tenant

        tenant = get_or_create_tenant(session, tracker="jira", site=CLOUD)
        session.expunge(tenant)
    backfiller.start(tenant, "SHOP")

    with pytest.raises(BackfillError, match="is running"):
        backfiller.start(tenant, "SHOP")


def test_a_rate_limit_that_outlasts_the_bound_stops_the_backfill(runtime: Runtime) -> None:
    sleeps = Sleeps()
    backfiller = Backfiller(runtime, sleep=sleeps, clock=lambda: NOW, max_wait_s=10.0)
    search = f"{CLOUD}/rest/api/3/search/jql"
    with tracker_mock(ordered=True) as fake:
        fake.post(f"{CLOUD}/rest/api/3/search/approximate-count", json={"count": 3})
        for _ in range(2):
            fake.post(search, status=429, headers={"Retry-After": "6"}, json={})
        tenant = backfiller.tenant_for("jira")
        record = backfiller.start(tenant, "SHOP")
        with pytest.raises(BackfillError, match="429"):
            backfiller.run(tenant, record)

    assert sleeps == [6.0]
    with runtime.database.session() as session:
        row = session.scalars(select(BackfillRow)).one()
        assert (row.state, row.page_token, row.pages_done) == ("failed", None, 0)
        assert "Run it again to resume" in row.message


# Linear ----------------------------------------------------------------------------------------

PROJECT_NODE = {
    "__typename": "Project",
    "id": "p-1",
    "slugId": "checkout-2",
    "name": "Checkout v2",
    "description": "",
    "content": "## Hypothesis\nWe believe a one-page checkout will result in more orders; we will "
    "know when conversion rises.\n## Success metric\nConversion from 2.1% to 2.6% by "
    "2026-05-31.\n## Customer problem\nShoppers abandon the four-step checkout.",
    "url": "https://linear.app/acme/project/checkout-2",
    "createdAt": "2026-01-02T09:00:00.000Z",
    "updatedAt": "2026-03-10T09:00:00.000Z",
    "startedAt": "2026-01-15T09:00:00.000Z",
    "completedAt": "2026-03-01T09:00:00.000Z",
    "canceledAt": None,
    "status": {"name": "Completed", "type": "completed"},
    "lead": {"id": "u-1", "name": "Dana"},
    "labels": {"nodes": []},
    "teams": {"nodes": [{"key": "ENG"}]},
    "needs": {"nodes": []},
    "completedIssueCountHistory": [0, 3, 7],
    "documentContent": {"updatedAt": "2026-01-10T09:00:00.000Z"},
    "projectUpdates": {
        "nodes": [
            {"createdAt": "2026-02-01T09:00:00.000Z", "body": "On track.", "health": "onTrack"},
            {
                "createdAt": "2026-03-08T09:00:00.000Z",
                "body": "## Outcome\nInvalidated: conversion stayed at 2.1%.",
                "health": "onTrack",
            },
        ],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    },
}
ISSUE_NODE = {
    "__typename": "Issue",
    "id": "i-1",
    "identifier": "ENG-7",
    "title": "Saved carts",
    "description": "## Hypothesis\nWe believe saved carts will result in more returning buyers.",
    "url": "https://linear.app/acme/issue/ENG-7",
    "createdAt": "2026-02-01T09:00:00.000Z",
    "updatedAt": "2026-03-03T09:00:00.000Z",
    "startedAt": "2026-02-10T09:00:00.000Z",
    "completedAt": None,
    "canceledAt": None,
    "labels": {"nodes": [{"name": "Epic", "parent": None}]},
    "state": {"name": "In Progress", "type": "started"},
    "team": {"key": "ENG"},
    "assignee": None,
    "creator": {"id": "u-2", "name": "Sam"},
    "parent": None,
    "project": None,
    "needs": {"nodes": []},
    "relations": {"nodes": []},
    "inverseRelations": {"nodes": []},
    "children": {"nodes": [{"id": "c-1"}]},
    "history": {
        "nodes": [
            {
                "createdAt": "2026-02-10T09:00:00.000Z",
                "updatedDescription": None,
                "fromState": {"type": "unstarted"},
                "toState": {"type": "started"},
            }
        ],
        "pageInfo": {"hasNextPage": True, "endCursor": "h1"},
    },
}
ISSUE_HISTORY_PAGE = {
    "data": {
        "issue": {
            "history": {
                "nodes": [
                    {
                        "createdAt": "2026-03-03T09:00:00.000Z",
                        "updatedDescription": True,
                        "fromState": None,
                        "toState": None,
                    }
                ],
                "pageInfo": {"hasNextPage": False, "endCursor": None},
            }
        }
    }
}


def test_linear_backfill_reads_projects_issues_and_their_history(runtime: Runtime) -> None:
    backfiller = Backfiller(runtime, sleep=Sleeps(), clock=lambda: NOW)
    with tracker_mock(ordered=True) as fake:
        fake.post(LINEAR, json={"data": {"organization": {"id": "org-1", "name": "Acme"}}})
        page_info = {"hasNextPage": False, "endCursor": None}
        fake.post(
            LINEAR, json={"data": {"projects": {"nodes": [PROJECT_NODE], "pageInfo": page_info}}}
        )
        fake.post(LINEAR, json={"data": {"issues": {"nodes": [ISSUE_NODE], "pageInfo": page_info}}})
        fake.post(LINEAR, json=ISSUE_HISTORY_PAGE)
        tenant = backfiller.tenant_for("linear")
        record = backfiller.start(tenant, "ENG")
        backfiller.run(tenant, record)
        operations = [json.loads(c.request.body)["operationName"] for c in fake.calls]

    assert operations == ["Organization", "BackfillProjects", "BackfillIssues", "IssueHistory"]
    assert tenant.site == "org-1"
    with runtime.database.session() as session:
        timelines = {t.key: t for t in session.scalars(select(EpicTimelineRow))}
        reminders = session.scalar(select(func.count()).select_from(OutcomeReminderRow))
    project = timelines["checkout-2"]
    assert (project.started_at, project.done_at) == (
        at("2026-01-15 09:00"),
        at("2026-03-01 09:00"),
    )
    assert (project.lean_ready_at_start, project.lean_ready_note) == (
        True,
        "the content is unchanged since the start",
    )
    assert (project.outcome_review, project.reviewed_at) == ("invalidated", at("2026-03-08 09:00"))
    assert (project.child_issues_done, project.metric_at_done, project.project) == (7, True, "ENG")
    issue = timelines["ENG-7"]
    # The description changed after the start and Linear keeps no earlier text.
    assert (issue.started_at, issue.lean_ready_at_start) == (at("2026-02-10 09:00"), None)
    assert "edited after the start" in issue.lean_ready_note
    assert (issue.child_issues_done, issue.done_at) == (1, None)
    assert reminders == 0
