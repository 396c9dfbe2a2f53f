"""The demo workspace: a few Jira and Linear epics, evaluated locally, never sent to a tracker."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from plugin.mappers import items_from_document
from plugin.rules_store import effective_ruleset
from plugin.runtime import Runtime
from plugin.storage import get_or_create_tenant, record_evaluation, upsert_work_item
from plugin.storage.backfills import save_timeline
from rules import WorkItem, evaluate

log = logging.getLogger(__name__)

DEMO_FILES = ("jira_epics.json", "linear_epics.json")
DEMO_NAME = "Demo workspace"

# The history a backfill would have found for the demo epics, in days before today, so the
# health report has something to show on first start: (started, done, lean-ready at start,
# outcome review, child issues done).
DEMO_HISTORY: dict[str, tuple[int | None, int | None, bool | None, str | None, int]] = {
    "SHOP-101": (24, None, True, None, 6),
    "SHOP-103": (12, None, False, None, 3),
    "SHOP-104": (110, 40, False, "invalidated", 14),
    "onboarding-3f1": (50, None, True, None, 9),
}


def load_demo(runtime: Runtime) -> int:
    """Store and evaluate the demo items under demo tenants; return how many were loaded."""
    loaded = 0
    now = datetime.now(UTC)
    for name in DEMO_FILES:
        text = files("plugin").joinpath("demo_data", name).read_text(encoding="utf-8")
        for item in items_from_document(json.loads(text), source=name):
            with runtime.database.session() as session:
                site = item.site or f"demo-{item.tracker}"
                tenant = get_or_create_tenant(
                    session, tracker=item.tracker, site=site, name=DEMO_NAME
                )
                ruleset, _ = effective_ruleset(
                    session, runtime, tenant.id, item.tracker, item.project
                )
                evaluation = evaluate(item, ruleset)
                row, applied = upsert_work_item(session, tenant_id=tenant.id, item=item, now=now)
                if applied:
                    record_evaluation(
                        session, work_item=row, evaluation=evaluation, evaluated_at=now
                    )
                    loaded += 1
                history = DEMO_HISTORY.get(item.key)
                if history is not None:
                    save_timeline(
                        session,
                        work_item_id=row.id,
                        tenant_id=tenant.id,
                        values=_timeline(item, history, now, row.updated_at),
                    )
    log.info("demo.loaded", extra={"items": loaded})
    return loaded


def _timeline(
    item: WorkItem,
    history: tuple[int | None, int | None, bool | None, str | None, int],
    now: datetime,
    synced_at: datetime,
) -> dict[str, Any]:
    started, done, ready, review, children = history

    def ago(days: int | None) -> datetime | None:
        return now - timedelta(days=days) if days is not None else None

    return {
        "tracker": item.tracker,
        "project": item.project,
        "key": item.key,
        "created_at": ago((started or 0) + 14),
        "started_at": ago(started),
        "done_at": ago(done),
        "canceled": False,
        "lean_ready_at_start": ready,
        "lean_ready_note": "demo history",
        "metric_at_done": False if done is not None else None,
        "outcome_review": review,
        "reviewed_at": ago(done - 5) if done is not None and review else None,
        "child_issues_done": children,
        "new_value": True,
        "last_status_category": item.status_category.value if item.status_category else None,
        "source": "backfill",
        "synced_at": synced_at,
    }
