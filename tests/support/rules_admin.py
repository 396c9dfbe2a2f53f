"""Shared set-up for the rules admin tests: an app with an admin token and stored epics."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from plugin.app import create_app
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.storage import get_or_create_tenant, record_evaluation, upsert_work_item
from rules import Section, StatusCategory, WorkItem, evaluate, preset

ADMIN_TOKEN = "admin-token-for-tests"
SITE = "https://acme.atlassian.net"
OTHER_SITE = "https://globex.atlassian.net"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

JIRA_SETTINGS = {
    "jira_url": SITE,
    "jira_email": "bot@acme.example",
    "jira_api_token": "jira-token",
}

HYPOTHESIS = (
    "We believe one-click reorder will result in more repeat orders; we will know when repeat "
    "orders rise from 20% to 25%."
)
METRIC = "Repeat order rate from 20% to 25% by 2026-06-30."
PROBLEM = (
    "Returning customers waste five minutes rebuilding their basket every week, and 30% give up."
)


def make_app(tmp_path: Path, **settings: Any) -> Flask:
    """Build the service on a SQLite file with the admin token set and no worker thread."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'leanguard.db'}",
        "secret_key": "secret-key-for-tests",
        "admin_token": ADMIN_TOKEN,
        "base_url": "https://leanguard.example.com",
    }
    values.update(settings)
    return create_app(Settings(**values), start_worker=False)


def runtime_of(app: Flask) -> Runtime:
    """Return the app's runtime."""
    runtime: Runtime = app.extensions["leanguard.runtime"]
    return runtime


def epic(
    key: str,
    *,
    project: str = "PAY",
    hypothesis: str | None = HYPOTHESIS,
    metric: str | None = METRIC,
    problem: str | None = PROBLEM,
    labels: Sequence[str] = (),
    status: StatusCategory = StatusCategory.IN_PROGRESS,
    tracker: str = "jira",
    site: str = SITE,
    minutes: int = 0,
) -> WorkItem:
    """Return a Jira epic with the outcome sections given (None: left out)."""
    sections = tuple(
        Section(heading, body, 2)
        for heading, body in (
            ("Hypothesis", hypothesis),
            ("Success metric", metric),
            ("Customer problem", problem),
        )
        if body is not None
    )
    return WorkItem(
        tracker=tracker,
        key=key,
        id=str(zlib.crc32(key.encode())),
        title=f"Epic {key}",
        kind="epic",
        type_name="Epic",
        site=site,
        url=f"{site}/browse/{key}",
        project=project,
        sections=sections,
        labels=tuple(labels),
        status="In Progress" if status is StatusCategory.IN_PROGRESS else str(status),
        status_category=status,
        updated=T0 + timedelta(minutes=minutes),
    )


def seed(app: Flask, items: Sequence[WorkItem], *, site: str = SITE, tracker: str = "jira") -> int:
    """Store items with an evaluation under the lean preset; return their tenant's id."""
    runtime = runtime_of(app)
    with runtime.database.session() as session:
        tenant = get_or_create_tenant(session, tracker=tracker, site=site)
        for item in items:
            row, _ = upsert_work_item(session, tenant_id=tenant.id, item=item, now=T0)
            record_evaluation(
                session, work_item=row, evaluation=evaluate(item, preset()), evaluated_at=T0
            )
        return tenant.id


def tenant(app: Flask, *, site: str = SITE, tracker: str = "jira") -> int:
    """Create (or find) a tenant with no items; return its id."""
    with runtime_of(app).database.session() as session:
        return get_or_create_tenant(session, tracker=tracker, site=site).id


def jira_issue(key: str, *, metric: bool) -> dict[str, Any]:
    """Return a Jira Cloud search hit for an epic."""
    description = "h2. Hypothesis\nWe believe reorder will result in more orders; we will know "
    description += "when orders rise from 20% to 25%.\nh2. Customer problem\nCustomers waste "
    description += "five minutes rebuilding baskets every week, and 30% give up.\n"
    if metric:
        description += "h2. Success metric\nRepeat orders from 20% to 25% by 2026-06-30.\n"
    return {
        "id": f"2{key[-1]}",
        "key": key,
        "fields": {
            "summary": f"Epic {key}",
            "issuetype": {"name": "Epic", "hierarchyLevel": 1, "subtask": False},
            "project": {"key": "PAY", "name": "Payments"},
            "status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
            "labels": [],
            "description": description,
            "updated": "2026-03-01T10:00:00.000+0000",
        },
        "names": {"summary": "Summary"},
    }
