"""The demo workspace: a few Jira and Linear epics, evaluated locally, never sent to a tracker."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from importlib.resources import files

from plugin.mappers import items_from_document
from plugin.rules_store import effective_ruleset
from plugin.runtime import Runtime
from plugin.storage import get_or_create_tenant, record_evaluation, upsert_work_item
from rules import evaluate

log = logging.getLogger(__name__)

DEMO_FILES = ("jira_epics.json", "linear_epics.json")
DEMO_NAME = "Demo workspace"


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
    log.info("demo.loaded", extra={"items": loaded})
    return loaded
