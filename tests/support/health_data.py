"""A small workspace whose health-report figures were worked out by hand (see the test)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from plugin.storage import EvaluationRow, Tenant, WorkItemRow
from plugin.storage.backfills import EpicTimelineRow
from plugin.storage.db import temporary_schema


def at(text_: str) -> datetime:
    """A UTC instant from ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM``."""
    fmt = "%Y-%m-%d %H:%M" if " " in text_ else "%Y-%m-%d"
    return datetime.strptime(text_, fmt).replace(tzinfo=UTC)


def postgres_schema(server: str) -> AbstractContextManager[str]:
    """A database URL whose search path is a fresh schema, dropped afterwards."""
    return temporary_schema(server, prefix="leanguard_test")


# (key, project, started, done, canceled, ready, review, reviewed, children, metric, new value)
EPICS: list[tuple[Any, ...]] = [
    (
        "SHOP-1",
        "SHOP",
        "2026-03-03 10:00",
        "2026-03-10 10:00",
        False,
        True,
        "validated",
        "2026-03-12",
        4,
        True,
        True,
    ),
    ("SHOP-2", "SHOP", "2026-03-04", None, False, False, None, None, 0, None, True),
    (
        "SHOP-3",
        "SHOP",
        "2026-03-09 09:00",
        "2026-03-11 09:00",
        False,
        None,
        "invalidated",
        "2026-03-13",
        2,
        True,
        False,
    ),
    ("SHOP-4", "SHOP", "2025-10-01", "2026-03-05", False, True, None, None, 40, False, True),
    ("SHOP-5", "SHOP", "2025-11-01", None, False, False, None, None, 0, None, True),
    ("SHOP-6", "SHOP", "2026-03-02 12:00", "2026-03-06", True, True, None, None, 0, None, True),
    (
        "SHOP-7",
        "SHOP",
        "2026-01-10",
        "2026-02-01",
        False,
        True,
        "validated",
        "2026-02-02",
        5,
        True,
        True,
    ),
    (
        "SHOP-9",
        "SHOP",
        "2026-01-01",
        "2026-03-03 12:00",
        False,
        True,
        "validated",
        "2026-04-08",
        0,
        None,
        True,
    ),
    (
        "PAY-1",
        "PAY",
        "2026-03-10 08:00",
        "2026-03-12 08:00",
        False,
        True,
        "inconclusive",
        "2026-03-14",
        1,
        True,
        True,
    ),
    ("PAY-4", "PAY", "2026-03-11", "2026-03-14", False, False, None, None, 3, True, True),
]

# key -> [(evaluated at, status, violations)], in the order they are inserted: the first list
# goes in before the first report, the second after it, to exercise the incremental fold.
EVALUATIONS_FIRST: dict[str, list[tuple[str, str, int]]] = {
    "SHOP-1": [("2026-03-04 10:00", "pass", 0)],
    "SHOP-2": [("2026-02-20", "pass", 0), ("2026-03-05", "fail", 2)],
    "SHOP-3": [("2026-02-01", "fail", 1), ("2026-03-10", "pass", 0)],
    "SHOP-4": [("2026-03-05", "waived", 0)],
    "PAY-1": [("2026-03-09", "fail", 1), ("2026-03-10", "waived", 0)],
    "PAY-4": [("2026-02-01", "fail", 1), ("2026-02-10", "pass", 0)],
    "SHOP-S1": [("2026-03-03", "fail", 1)],
    "SHOP-D1": [("2026-03-03", "fail", 2)],
}
EVALUATIONS_LATER: dict[str, list[tuple[str, str, int]]] = {
    # Earlier failures arriving after the pass: the first fix must be found again.
    "SHOP-1": [("2026-03-01 10:00", "fail", 2), ("2026-03-02", "fail", 1)],
    "SHOP-2": [("2026-03-06", "fail", 3)],
    "SHOP-3": [("2026-03-12", "fail", 1)],
    "PAY-1": [("2026-03-11 12:00", "pass", 0)],
}


def load_workspace(
    session: Session, *, tenant_site: str = "https://acme.atlassian.net"
) -> dict[str, int]:
    """Store the tenant, items and timelines; return work item ids by key."""
    tenant = Tenant(tracker="jira", site=tenant_site, name="", settings={})
    session.add(tenant)
    session.flush()
    ids: dict[str, int] = {}
    now = at("2026-01-01")
    keys = [e[0] for e in EPICS] + ["SHOP-S1", "SHOP-D1"]
    for key in keys:
        project = key.split("-")[0]
        row = WorkItemRow(
            tenant_id=tenant.id,
            tracker="jira",
            item_id=key,
            key=key,
            project=project,
            kind="story" if key == "SHOP-S1" else "epic",
            title=f"Title of {key}",
            snapshot={"tracker": "jira", "key": key},
            status_category=None,
            deleted=key == "SHOP-D1",
            first_seen_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        ids[key] = row.id
    for (
        key,
        project,
        started,
        done,
        canceled,
        ready,
        review,
        reviewed,
        children,
        metric,
        new,
    ) in EPICS:
        session.add(
            EpicTimelineRow(
                work_item_id=ids[key],
                tenant_id=tenant.id,
                tracker="jira",
                project=project,
                key=key,
                started_at=at(started) if started else None,
                done_at=at(done) if done else None,
                canceled=canceled,
                lean_ready_at_start=ready,
                lean_ready_note="",
                metric_at_done=metric,
                outcome_review=review,
                reviewed_at=at(reviewed) if reviewed else None,
                child_issues_done=children,
                new_value=new,
                source="backfill",
                synced_at=now,
            )
        )
    session.flush()
    return ids


def add_evaluations(
    session: Session, ids: dict[str, int], evaluations: dict[str, list[tuple[str, str, int]]]
) -> None:
    """Append evaluation rows (ids in the order given)."""
    rows = [
        {
            "work_item_id": ids[key],
            "evaluated_at": at(when),
            "ruleset_name": "lean",
            "ruleset_version": "1",
            "status": status,
            "violations": violations,
            "failing_rules": [],
            "fields_present": [],
            "tree": {},
        }
        for key, entries in evaluations.items()
        for when, status, violations in entries
    ]
    for row in rows:
        session.execute(insert(EvaluationRow).values(**row))
