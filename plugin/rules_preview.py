"""Preview a candidate rule set: which items would start or stop failing, or change their card."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from plugin.mappers import jira_issue_to_item
from plugin.processing import map_item
from plugin.rules_store import file_ruleset, open_items, resolve
from plugin.runtime import Runtime
from plugin.storage import Tenant, WorkItemRow, latest_ruleset, upsert_work_item
from plugin.trackers.base import TrackerClient
from plugin.trackers.errors import TrackerError
from plugin.trackers.jira import JiraClient
from plugin.trackers.linear import LinearClient
from rules import Evaluation, Mode, RuleSet, Status, WorkItem, evaluate

log = logging.getLogger(__name__)

PULL_LIMIT = 200
"""At most this many epics are read from a tracker for one preview."""
_JQL_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Failure:
    """A visible failure of one rule on one item."""

    rule: str
    severity: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-safe dict."""
        return {"rule": self.rule, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class Change:
    """An item whose card would change under the candidate rules."""

    key: str
    title: str
    url: str
    before: tuple[Failure, ...]
    after: tuple[Failure, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "key": self.key,
            "title": self.title,
            "url": self.url,
            "before": [f.to_dict() for f in self.before],
            "after": [f.to_dict() for f in self.after],
        }


@dataclass(frozen=True)
class DryRunFailure:
    """A dry-run rule that would fail on an item if it went live."""

    key: str
    title: str
    url: str
    rule: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-safe dict."""
        return {
            "key": self.key,
            "title": self.title,
            "url": self.url,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass
class Preview:
    """What saving a candidate rule set would do to a scope's open items."""

    checked: int = 0
    pulled: int = 0
    unchanged: int = 0
    start_failing: list[Change] = field(default_factory=list)
    stop_failing: list[Change] = field(default_factory=list)
    message_changed: list[Change] = field(default_factory=list)
    dry_run: list[DryRunFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "checked": self.checked,
            "pulled": self.pulled,
            "unchanged": self.unchanged,
            "start_failing": [c.to_dict() for c in self.start_failing],
            "stop_failing": [c.to_dict() for c in self.stop_failing],
            "message_changed": [c.to_dict() for c in self.message_changed],
            "dry_run": [d.to_dict() for d in self.dry_run],
            "notes": list(self.notes),
        }


def preview(
    session: Session,
    runtime: Runtime,
    *,
    tenant: Tenant,
    tracker: str,
    project: str | None,
    candidate: RuleSet,
    on: date | None = None,
) -> Preview:
    """Evaluate a scope's open items under the rules in force and under ``candidate``."""
    result = Preview()
    if project is not None and not _has_items(session, tenant.id, tracker, project):
        result.pulled = _pull(session, runtime, tenant, tracker, project, result.notes)
    rows = open_items(session, tenant_id=tenant.id, tracker=tracker, project=project)
    if project is None:
        rows, skipped = _inheriting_default(session, runtime, tenant.id, tracker, rows)
        if skipped:
            result.notes.append(
                f"{skipped} items belong to projects with rules of their own; saving the default "
                "still re-checks them, but their change is not previewed here."
            )
    current_by_project: dict[str, RuleSet] = {}
    for row in rows:
        item = row.item()
        current = current_by_project.get(item.project)
        if current is None:
            current = resolve(session, runtime, tenant.id, tracker, item.project).ruleset
            current_by_project[item.project] = current
        _compare(
            result,
            item,
            runtime.details_url(item),
            evaluate(item, current, on=on),
            evaluate(item, candidate, on=on),
        )
    result.checked = len(rows)
    return result


def _compare(
    result: Preview, item: WorkItem, url: str, before: Evaluation, after: Evaluation
) -> None:
    old, new = _failures(before), _failures(after)
    change = Change(item.key, item.title, url, old, new)
    if not old and new:
        result.start_failing.append(change)
    elif old and not new:
        result.stop_failing.append(change)
    elif old != new:
        result.message_changed.append(change)
    else:
        result.unchanged += 1
    for node in after.tree.children:
        if node.mode is Mode.DRY_RUN and node.status is Status.FAIL:
            result.dry_run.append(DryRunFailure(item.key, item.title, url, node.name, node.message))


def _failures(evaluation: Evaluation) -> tuple[Failure, ...]:
    return tuple(
        Failure(
            node.name,
            node.severity.value if node.severity else "warning",
            node.message,
        )
        for node in evaluation.failing_rules()
    )


def _has_items(session: Session, tenant_id: int, tracker: str, project: str) -> bool:
    return (
        session.query(WorkItemRow.id)
        .filter(
            WorkItemRow.tenant_id == tenant_id,
            WorkItemRow.tracker == tracker,
            WorkItemRow.project == project,
            ~WorkItemRow.deleted,
        )
        .first()
        is not None
    )


def _inheriting_default(
    session: Session, runtime: Runtime, tenant_id: int, tracker: str, rows: list[WorkItemRow]
) -> tuple[list[WorkItemRow], int]:
    """Keep the items whose project falls back to the tenant default."""
    own: dict[str, bool] = {}
    kept: list[WorkItemRow] = []
    for row in rows:
        if row.project not in own:
            own[row.project] = (
                file_ruleset(runtime.catalog, tracker, row.project) is not None
                or latest_ruleset(
                    session, tenant_id=tenant_id, tracker=tracker, project=row.project
                )
                is not None
            )
        if not own[row.project]:
            kept.append(row)
    return kept, len(rows) - len(kept)


def _pull(
    session: Session,
    runtime: Runtime,
    tenant: Tenant,
    tracker: str,
    project: str,
    notes: list[str],
) -> int:
    """Read a project's epics from its tracker and store them; return how many were stored."""
    client = runtime.client_for(tenant)
    if client is None:
        notes.append(
            f"No items of {project} are stored yet, and no {tracker} credentials are set to read "
            "them; the preview covers items leanguard has already seen."
        )
        return 0
    try:
        items = _epics(client, tenant, project)
    except TrackerError as exc:
        log.warning("preview.pull-failed", extra={"project": project, "error": exc.message})
        notes.append(f"Could not read the epics of {project} from {tracker}: {exc.message}")
        return 0
    now = datetime.now(UTC)
    for item in items:
        upsert_work_item(session, tenant_id=tenant.id, item=item, now=now)
    notes.append(f"Read {len(items)} epics of {project} from {tracker} to preview against.")
    return len(items)


def _epics(client: TrackerClient, tenant: Tenant, project: str) -> list[WorkItem]:
    if isinstance(client, JiraClient):
        return _jira_epics(client, tenant, project)
    if isinstance(client, LinearClient):
        return _linear_epics(client, tenant, project)
    return []


def epic_jql(project: str) -> str:
    """Return the JQL for a project's epics (the key quoted when it is not a plain key)."""
    key = project if _JQL_KEY.match(project) else '"' + project.replace('"', '\\"') + '"'
    return f"project = {key} AND issuetype = Epic"


def _jira_epics(client: JiraClient, tenant: Tenant, project: str) -> list[WorkItem]:
    items: list[WorkItem] = []
    token: str | None = None
    while len(items) < PULL_LIMIT:
        issues, token = client.search_epics(
            epic_jql(project), page_token=token, max_results=min(100, PULL_LIMIT - len(items))
        )
        # Search results carry the field names (expand=names), so no /field call is needed.
        items.extend(jira_issue_to_item(issue, site=tenant.site) for issue in issues)
        if token is None:
            break
    return items[:PULL_LIMIT]


def _linear_epics(client: LinearClient, tenant: Tenant, project: str) -> list[WorkItem]:
    items: list[WorkItem] = []
    cursor: str | None = None
    prefix = f"{project}-".casefold()
    fetched = 0
    while fetched < PULL_LIMIT:
        nodes, cursor = client.list_epics(after=cursor)
        for node in nodes:
            kind = "project" if node.get("__typename") == "Project" else "issue"
            identifier = str(node.get("identifier") or "")
            # An issue's identifier starts with its team key; a project names its teams only
            # in its details, so projects are read in full to tell.
            if kind == "issue" and not identifier.casefold().startswith(prefix):
                continue
            if fetched >= PULL_LIMIT:
                break
            raw = client.fetch_item(str(node.get("id")), kind)
            fetched += 1
            if raw is None:
                continue
            item = map_item(client, tenant, raw, kind)
            if item.project.casefold() == project.casefold():
                items.append(item)
        if cursor is None:
            break
    return items
